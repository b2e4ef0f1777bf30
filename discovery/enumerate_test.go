package discovery

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Responders finds a responder by the service type enumeration it answers
// (RFC 6763 section 9), with the types it advertises.
func TestRespondersEnumeratesTypes(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	register(t, r, Service{Instance: "Enumerated", Type: typ, Port: 4343})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	as, err := Responders(ctx, loConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if slices.Contains(a.Types, typ) && a.Interface == "lo" {
			return
		}
	}
	t.Fatalf("Responders = %+v; want one on lo naming %s", as, typ)
}
