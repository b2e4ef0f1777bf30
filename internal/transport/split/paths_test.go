package split

import (
	"net/netip"
	"testing"
)

func TestPaths(t *testing.T) {
	in := func(ip netip.Addr) bool { return netip.MustParsePrefix("10.9.0.0/24").Contains(ip) }
	var p Paths
	if got := p.Other("peer", false); got != "" {
		t.Fatalf("empty Paths gave %q", got)
	}
	for _, a := range []string{"127.0.0.1:7000", "10.9.0.2:7000"} {
		p.Note("peer", a, InTunnel(a, in))
	}
	if got := p.Other("peer", InTunnel("127.0.0.1:7000", in)); got != "10.9.0.2:7000" {
		t.Errorf("other than the host's: %q", got)
	}
	if got := p.Other("peer", InTunnel("10.9.0.2:7000", in)); got != "127.0.0.1:7000" {
		t.Errorf("other than the tunnel's: %q", got)
	}
	if InTunnel("peer.local:7000", in) || InTunnel("garbage", in) {
		t.Error("a name or garbage is in the tunnel")
	}
}
