package discovery

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestBrowseFindsResponder(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	ctx := context.Background()
	reg, err := r.Register(ctx, Service{Instance: "Alpha Node.1", Type: typ, Port: 4242, TXT: map[string]string{"id": "abc", "v": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	got := ev.wait(t, Found, "Alpha Node.1", 5*time.Second).Service
	if got.Port != 4242 || got.TXT["id"] != "abc" || got.TXT["v"] != "1" || got.Type != typ || got.Domain != "local." {
		t.Errorf("found %+v", got)
	}
	if got.Host != reg.Service().Host || got.Interface != "lo" {
		t.Errorf("host %q iface %q, want %q lo", got.Host, got.Interface, reg.Service().Host)
	}
	if len(got.Addrs) != 1 || got.Addrs[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("addrs %v", got.Addrs)
	}
}
