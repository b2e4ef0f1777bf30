package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
)

// TestAvahiInterop checks discovery against Avahi both ways: Avahi in c
// resolves a nearnet listener in a, and nearnet's browse in a finds a
// service Avahi publishes in c.
func TestAvahiInterop(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "c")
	a, c := lab.Host("a"), lab.Host("c")
	c.StartAvahi(t)
	key := keyFile(t, a)

	t.Run("Avahi sees nearnet", func(t *testing.T) {
		l := listen(t, a, "visible", "--key-file", key)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		s, err := c.AvahiFind(ctx, "_nearnet._tcp", func(s netns.AvahiService) bool { return s.Name == "visible" })
		if err != nil {
			t.Fatal(err)
		}
		// avahi-browse prints one address: a's IPv4 one or, from the AAAA
		// record beside it, its link-local one.
		if s.Address != a.Addr().String() && s.Address != a.LinkLocal(t).WithZone("").String() || s.Port != l.ready.Port {
			t.Errorf("Avahi resolved %+v; want %s or %s, port %d", s, a.Addr(), a.LinkLocal(t), l.ready.Port)
		}
		if id, _ := s.TXTValue("id"); id != l.ready.Peer {
			t.Errorf("Avahi sees TXT %q; want id=%s", s.TXT, l.ready.Peer)
		}
		if v, _ := s.TXTValue("v"); v != "1" {
			t.Errorf("Avahi sees TXT %q; want v=1", s.TXT)
		}
		if tr, _ := s.TXTValue("tr"); !slices.Contains(strings.Split(tr, ","), "ws") {
			t.Errorf("Avahi sees TXT %q; want tr listing ws (PROTOCOL.md section 2)", s.TXT)
		}
	})

	t.Run("nearnet sees Avahi", func(t *testing.T) {
		c.AvahiPublish(t, "from avahi", "_nearnet._tcp", 7777, "foo=bar", "empty=")
		browse := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key)
		found := waitEvent(t, browse, "found the Avahi service", func(e event) bool {
			return e.Event == "found" && e.Name == "from avahi"
		})
		if found.Port != 7777 || !addrsHave(found.Addrs, c.Addr()) {
			t.Errorf("found %s; want port 7777 at %s", found, c.Addr())
		}
		if found.Peer != "" {
			t.Errorf("found %s; want no peer ID for a service that is not nearnet", found)
		}
		txt := txtMap(t, found.TXT)
		if v, ok := txt["foo"]; !ok || v != "bar" {
			t.Errorf("found %s; want TXT foo=bar", found)
		}
		if v, ok := txt["empty"]; !ok || v != "" {
			t.Errorf("found %s; want TXT empty=", found)
		}
	})
}
