package nearnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/unicastdns/dnstest"
)

// TestWideAreaNode runs the node API against BIND9 on loopback: nodes
// register in the domain on Listen, Browse reports them from the domain
// (Advert.Domain) beside the link, Connect by name works and prefers the
// link's advert, Close removes the registration, and a rejected key makes
// Listen return a typed error while the node keeps listening.
func TestWideAreaNode(t *testing.T) {
	netns.Require(t, fmt.Sprintf("root to run named: running as uid %d", os.Geteuid()), os.Geteuid() == 0)
	netns.RequireCommands(t, "named")
	srv, err := dnstest.Write(dnstest.Options{Dir: t.TempDir(), Zone: "wide.test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	key := discovery.TSIGKey{Name: srv.Key.Name, Algorithm: srv.Key.Algorithm, Secret: srv.Key.Secret}
	wideNode := func(name string, key discovery.TSIGKey) *Node {
		n, err := NewNode(&Config{Name: name, Key: testKey, Interfaces: []string{"lo"}, Service: "_nnwide._tcp",
			Domain: srv.Zone, DNSServer: srv.Addr.String(), TSIGKey: key, DNSRefresh: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a, b := wideNode("wide-a", key), wideNode("wide-b", key)
	for _, n := range []*Node{a, b} {
		if err := n.Listen(ctx); err != nil {
			t.Fatalf("Listen: %v", err)
		}
	}

	var mu sync.Mutex
	var evs []BrowseEvent
	changed := make(chan struct{}, 1)
	bctx, bcancel := context.WithCancel(ctx)
	browseDone := make(chan error, 1)
	go func() {
		browseDone <- a.Browse(bctx, func(e BrowseEvent) {
			mu.Lock()
			evs = append(evs, e)
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	defer func() {
		bcancel()
		<-browseDone
	}()
	waitFor := func(what string, match func(BrowseEvent) bool) BrowseEvent {
		t.Helper()
		for {
			mu.Lock()
			for _, e := range evs {
				if match(e) {
					mu.Unlock()
					return e
				}
			}
			mu.Unlock()
			select {
			case <-changed:
			case <-ctx.Done():
				t.Fatalf("no %s: events %+v", what, evs)
			}
		}
	}
	wide := waitFor("wide-area Found for wide-b", func(e BrowseEvent) bool {
		return e.Kind == Found && e.Name == "wide-b" && e.Domain == "wide.test."
	})
	if wide.ID != b.ID() || wide.Interface != "" || wide.Port == 0 || len(wide.Addrs) == 0 {
		t.Fatalf("wide-area advert %+v", wide.Advert)
	}
	waitFor("link Found for wide-b", func(e BrowseEvent) bool {
		return e.Kind == Found && e.Name == "wide-b" && e.Domain == "local."
	})
	c, err := a.Connect(ctx, "wide-b")
	if err != nil {
		t.Fatalf("Connect by name: %v", err)
	}
	cb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sendOne(t, ctx, c, cb, "through the name found in two places")
	a.mu.Lock()
	preferred := a.adverts[b.ID()]
	a.mu.Unlock()
	if preferred.Domain != "local." {
		t.Fatalf("Connect by name uses the %q advert, want the link's", preferred.Domain)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitFor("wide-area Lost for wide-b", func(e BrowseEvent) bool {
		return e.Kind == Lost && e.Name == "wide-b" && e.Domain == "wide.test."
	})

	bad := wideNode("wide-bad", discovery.TSIGKey{Name: srv.Key.Name, Secret: []byte("not the server's secret, no.....")})
	err = bad.Listen(ctx)
	var de *discovery.DNSError
	if !errors.Is(err, discovery.ErrTSIGKey) || !errors.As(err, &de) || !de.Permanent {
		t.Fatalf("Listen with a rejected key = %v, want a permanent DNSError matching ErrTSIGKey", err)
	}
	if bad.Addr() == nil {
		t.Fatal("the node stopped listening after the wide-area failure")
	}
	waitFor("link Found for wide-bad", func(e BrowseEvent) bool {
		return e.Kind == Found && e.Name == "wide-bad" && e.Domain == "local."
	})
}
