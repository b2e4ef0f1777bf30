package nearnet

import (
	"net/netip"
	"testing"
)

// A peer advertised under both service types is reported once: Found at
// the first sighting, Updated only when what it offers changes, Lost once
// it is gone under both.
func TestBrowseMergesBothServiceTypes(t *testing.T) {
	id := NewPeerID()
	at := func(svc string, port int, addrs ...string) Advert {
		a := Advert{Name: "kitchen", ID: id, Service: svc, Host: "h.local.", Port: port, Interface: "lo",
			TXT: map[string]string{"id": id.String(), "tr": "ws,quic"}}
		for _, s := range addrs {
			a.Addrs = append(a.Addrs, netip.MustParseAddr(s))
		}
		return a
	}
	tcp, udp := "_x._tcp", "_x._udp"
	m := newBrowseMerger()
	steps := []struct {
		in   BrowseEvent
		want BrowseEventKind // 0: nothing reported
	}{
		{BrowseEvent{Found, at(tcp, 7, "10.0.0.1")}, Found},
		{BrowseEvent{Found, at(udp, 7, "10.0.0.1")}, 0},                     // the same peer under the other type
		{BrowseEvent{Updated, at(udp, 7, "10.0.0.1", "10.0.0.2")}, Updated}, // a new address
		{BrowseEvent{Updated, at(tcp, 7, "10.0.0.1", "10.0.0.2")}, 0},       // the same change, seen again
		{BrowseEvent{Lost, at(tcp, 7, "10.0.0.1", "10.0.0.2")}, 0},          // still there under _udp
		{BrowseEvent{Lost, at(udp, 7, "10.0.0.1", "10.0.0.2")}, Lost},
		{BrowseEvent{Lost, at(udp, 7, "10.0.0.1")}, 0}, // gone already
		{BrowseEvent{Found, at(udp, 8, "10.0.0.3")}, Found},
	}
	for i, s := range steps {
		got, ok := m.add(s.in)
		if !ok && s.want != 0 || ok && got.Kind != s.want {
			t.Fatalf("step %d (%v under %s): reported %v (%v), want %v", i, s.in.Kind, s.in.Service, got.Kind, ok, s.want)
		}
	}
	// Services that are not nearnet peers pass through unchanged.
	other := Advert{Name: "printer", Service: tcp, Interface: "lo"}
	for _, k := range []BrowseEventKind{Found, Found, Lost} {
		if got, ok := m.add(BrowseEvent{k, other}); !ok || got.Kind != k {
			t.Fatalf("non-nearnet %v: reported %v (%v)", k, got.Kind, ok)
		}
	}
}
