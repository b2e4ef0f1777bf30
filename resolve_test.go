package nearnet

import (
	"context"
	"strings"
	"testing"
	"time"
)

// When browsing cannot start, Resolve says why rather than a bare "not
// found" (it once printed "%!w(<nil>)" there).
func TestResolveSaysWhyBrowsingFailed(t *testing.T) {
	n, err := NewNode(&Config{Key: testKey, Interfaces: []string{"nonexistent9"}})
	if err != nil {
		t.Skipf("NewNode refuses the interface up front: %v", err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = n.Resolve(ctx, "nobody")
	if err == nil || strings.Contains(err.Error(), "%!") || !strings.Contains(err.Error(), "nonexistent9") {
		t.Fatalf("Resolve: %v; want the browse error naming the interface", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Resolve waited for the deadline instead of reporting the browse error")
	}
}
