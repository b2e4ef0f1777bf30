// Package advert holds what a node does with DNS-SD beyond discovery
// itself: registering its instance under each transport's service type
// (Advertise), and merging the sightings of one nearnet peer under both
// types into one story (Merger).
package advert

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/nearnet/nearnet/discovery"
)

// Merger turns the sightings of nearnet peers under both service types
// into one story per peer and interface: Found at the first sighting,
// Updated only when what it advertises changes, Lost once it is gone under
// both. Services without a peer ID pass through as they are. A Merger is
// not safe for concurrent use.
type Merger struct {
	peers map[key]*peer
}

type key struct {
	id          [16]byte
	name, iface string
}

type peer struct {
	by       map[string]discovery.Service // by service type, what is seen now
	reported discovery.Service            // what the last event reported
}

// Add takes one sighting of s (kind; id zero if s is no nearnet peer) and
// returns the event to report, if any.
func (m *Merger) Add(kind discovery.EventKind, s discovery.Service, id [16]byte) (discovery.EventKind, discovery.Service, bool) {
	if id == ([16]byte{}) {
		return kind, s, true
	}
	if m.peers == nil {
		m.peers = map[key]*peer{}
	}
	k := key{id, s.Instance, s.Interface}
	p := m.peers[k]
	if kind == discovery.Lost {
		if p == nil {
			return kind, s, false
		}
		delete(p.by, s.Type)
		for _, rest := range p.by {
			// Still seen under the other type: report it only if what it
			// advertises there differs.
			return p.report(discovery.Updated, rest)
		}
		delete(m.peers, k)
		return kind, s, true
	}
	if p == nil {
		p = &peer{by: map[string]discovery.Service{}, reported: s}
		m.peers[k] = p
		p.by[s.Type] = s
		return discovery.Found, s, true
	}
	p.by[s.Type] = s
	return p.report(discovery.Updated, s)
}

// report returns an event of kind for s unless s advertises what the last
// event reported.
func (p *peer) report(kind discovery.EventKind, s discovery.Service) (discovery.EventKind, discovery.Service, bool) {
	if sameOffer(s, p.reported) {
		return 0, discovery.Service{}, false
	}
	p.reported = s
	return kind, s, true
}

// sameOffer reports whether a and b advertise the same thing, whatever
// service type each was seen under.
func sameOffer(a, b discovery.Service) bool {
	return a.Host == b.Host && a.Port == b.Port && slices.Equal(a.Addrs, b.Addrs) && maps.Equal(a.TXT, b.TXT)
}

// Advertise registers a node's service instances named name, one per
// service type of types, all on port with txt, and returns the responder
// and the name the first registration settled on after a conflict (the
// others take it too).
func Advertise(ctx context.Context, cfg discovery.Config, name string, types []string, port int, txt map[string]string) (*discovery.Responder, string, error) {
	r, err := discovery.NewResponder(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("nearnet: advertise: %w", err)
	}
	for i, typ := range types {
		reg, err := r.Register(ctx, discovery.Service{Instance: name, Type: typ, Port: port, TXT: txt})
		if err != nil {
			r.Close()
			return nil, "", fmt.Errorf("nearnet: advertise %s: %w", typ, err)
		}
		if i == 0 {
			name = reg.Service().Instance
		}
	}
	return r, name, nil
}
