package tunnel

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/nearnet/nearnet/discovery"
)

// multicastPair is stackPair with Options.Multicast.
func multicastPair(t *testing.T) (a, b *Stack) {
	t.Helper()
	da, db := Pipe()
	var err error
	a, err = New(da, Options{Multicast: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("fd00:9::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = New(db, Options{Multicast: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd00:9::2/64")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// mDNS over two stacks joined by a Pipe: a service registered on one is
// found by browsing on the other, with the first stack's addresses, on
// its interface; Reannounce works on the stack's interfaces; and a stack
// without Options.Multicast has no Discovery.
func TestStackDiscovery(t *testing.T) {
	a, b := multicastPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := discovery.NewResponder(discovery.Config{Net: a.Discovery()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Register(ctx, discovery.Service{Instance: "in the tunnel", Type: "_nntest._tcp", Port: 4242}); err != nil {
		t.Fatal(err)
	}
	found := make(chan discovery.Service, 1)
	br, err := discovery.NewBrowser(discovery.Config{Net: b.Discovery()}, "_nntest._tcp", func(e discovery.Event) {
		if e.Kind == discovery.Found {
			select {
			case found <- e.Service:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	select {
	case s := <-found:
		t.Logf("found %+v", s)
		if s.Instance != "in the tunnel" || s.Port != 4242 || !slices.Contains(s.Addrs, netip.MustParseAddr("10.9.0.1")) || s.Interface != InterfaceName {
			t.Fatalf("found %+v", s)
		}
	case <-ctx.Done():
		t.Fatal("the browser on b did not find a's service")
	}
	// Re-reading the stack's interfaces keeps the one it has.
	if err := r.Reannounce(); err != nil {
		t.Fatal(err)
	}
	da, _ := Pipe()
	st, err := New(da, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.3/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Discovery() != nil {
		t.Fatal("a stack without Options.Multicast has a Discovery")
	}
}
