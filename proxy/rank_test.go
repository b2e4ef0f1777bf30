package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRankOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := Rank(ctx, nil, "h:1", &RankOptions{Concurrency: -1}); err == nil || !strings.Contains(err.Error(), "Concurrency") {
		t.Errorf("negative Concurrency: %v", err)
	}
	if _, err := Rank(ctx, nil, "h:1", &RankOptions{Timeout: -1}); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("negative Timeout: %v", err)
	}
	if _, err := Rank(ctx, nil, "h", nil); err == nil {
		t.Error("target without a port accepted")
	}
	if r, err := Rank(ctx, nil, "h:1", nil); err != nil || len(r) != 0 {
		t.Errorf("no proxies: %v, %v", r, err)
	}
	// A context that has ended: every proxy gets its error.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	r, err := Rank(canceled, []string{"http://127.0.0.1:1", "socks5://u:" + testPass + "@127.0.0.1:2"}, "h:1", nil)
	if !errors.Is(err, context.Canceled) || len(r) != 2 {
		t.Fatalf("canceled: %v, %v", r, err)
	}
	for _, x := range r {
		if !errors.Is(x.Err, context.Canceled) {
			t.Errorf("%s: %v", x.Proxy, x.Err)
		}
		noSecrets(t, x.Proxy)
	}
}
