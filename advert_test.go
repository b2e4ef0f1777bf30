package nearnet

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/nearnet/nearnet/discovery"
)

// A link-local address keeps its interface from the browse result to the
// address dialled: "[fe80::1%eth0]:7000", never the bare fe80::1 that any
// interface could take.
func TestAdvertKeepsZones(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1%eth0")
	a := advertOf(discovery.Service{Instance: "x", Type: "_nearnet._tcp", Port: 7000, Interface: "eth0",
		Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), ll}})
	if len(a.Addrs) != 2 || a.Addrs[1] != ll {
		t.Fatalf("advert addresses %v, want the zone kept", a.Addrs)
	}
	if got := net.JoinHostPort(a.Addrs[1].String(), strconv.Itoa(a.Port)); got != "[fe80::1%eth0]:7000" {
		t.Errorf("dial address %q, want [fe80::1%%eth0]:7000", got)
	}
	if ap, err := netip.ParseAddrPort("[fe80::1%eth0]:7000"); err != nil || ap.Addr() != ll {
		t.Errorf("ParseAddrPort = %v, %v; want the zone kept", ap, err)
	}
}
