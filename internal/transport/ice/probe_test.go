package ice_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/nearnet/nearnet/internal/transport/ice"
)

func TestParseCandidate(t *testing.T) {
	c, err := ice.ParseCandidate("candidate:1 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 0.0.0.0 rport 40000")
	if err != nil || c.Type != "srflx" || c.Addr != netip.MustParseAddrPort("203.0.113.7:40000") || c.Network != "udp" {
		t.Errorf("got %+v, %v", c, err)
	}
	var de *ice.DescriptionError
	if _, err := ice.ParseCandidate("candidate:1 1 udp"); !errors.As(err, &de) {
		t.Errorf("a truncated candidate: %v; want a DescriptionError", err)
	}
}

// FuzzParseCandidate: any string is a candidate or a DescriptionError,
// never a panic.
func FuzzParseCandidate(f *testing.F) {
	for _, s := range []string{
		"candidate:1 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 0.0.0.0 rport 40000",
		"candidate:2 1 udp 16777215 10.200.0.100 49500 typ relay raddr 10.2.0.2 rport 50000",
		"candidate:3 1 udp 2130706431 10.0.0.1 5000 typ host",
		"candidate:4 1 tcp 1518280447 10.0.0.1 9 typ host tcptype active",
		"candidate:1 1 udp 1 ::1 1 typ host",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ice.ParseCandidate(s)
		var de *ice.DescriptionError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("%q: %v is not a DescriptionError", s, err)
		}
		if err == nil && !c.Addr.IsValid() {
			t.Fatalf("%q: no address", s)
		}
	})
}
