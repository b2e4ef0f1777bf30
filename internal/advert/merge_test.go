package advert

import (
	"net/netip"
	"testing"

	"github.com/nearnet/nearnet/discovery"
)

// A peer advertised under both service types is reported once: Found at
// the first sighting, Updated only when what it offers changes, Lost once
// it is gone under both. (Moved here from the root's tests with the
// merger.)
func TestBrowseMergesBothServiceTypes(t *testing.T) {
	id := [16]byte{1, 2, 3}
	at := func(svc string, port int, addrs ...string) discovery.Service {
		s := discovery.Service{Instance: "kitchen", Type: svc, Host: "h.local.", Port: port, Interface: "lo",
			TXT: map[string]string{"id": "010203", "tr": "ws,quic"}}
		for _, a := range addrs {
			s.Addrs = append(s.Addrs, netip.MustParseAddr(a))
		}
		return s
	}
	found, updated, lost := discovery.Found, discovery.Updated, discovery.Lost
	tcp, udp := "_x._tcp", "_x._udp"
	var m Merger
	steps := []struct {
		kind discovery.EventKind
		in   discovery.Service
		want discovery.EventKind // 0: nothing reported
	}{
		{found, at(tcp, 7, "10.0.0.1"), found},
		{found, at(udp, 7, "10.0.0.1"), 0},                     // the same peer under the other type
		{updated, at(udp, 7, "10.0.0.1", "10.0.0.2"), updated}, // a new address
		{updated, at(tcp, 7, "10.0.0.1", "10.0.0.2"), 0},       // the same change, seen again
		{lost, at(tcp, 7, "10.0.0.1", "10.0.0.2"), 0},          // still there under _udp
		{lost, at(udp, 7, "10.0.0.1", "10.0.0.2"), lost},
		{lost, at(udp, 7, "10.0.0.1"), 0}, // gone already
		{found, at(udp, 8, "10.0.0.3"), found},
	}
	for i, s := range steps {
		got, _, ok := m.Add(s.kind, s.in, id)
		if !ok && s.want != 0 || ok && got != s.want {
			t.Fatalf("step %d (%v under %s): reported %v (%v), want %v", i, s.kind, s.in.Type, got, ok, s.want)
		}
	}
	// Services that are not nearnet peers pass through unchanged.
	other := discovery.Service{Instance: "printer", Type: tcp, Interface: "lo"}
	for _, k := range []discovery.EventKind{found, found, lost} {
		if got, _, ok := m.Add(k, other, [16]byte{}); !ok || got != k {
			t.Fatalf("non-nearnet %v: reported %v (%v)", k, got, ok)
		}
	}
}
