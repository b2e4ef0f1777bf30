package nearnet

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/internal/advert"
	"github.com/nearnet/nearnet/internal/enum"
)

// TXT keys nearnet puts in its advertisement (PROTOCOL.md, "Discovery").
const (
	txtID         = "id" // the PeerID
	txtVersion    = "v"  // protocol version
	txtTransports = "tr" // comma-separated transports: "ws", "quic"
)

// TXTGroup is the TXT key naming the group a node has joined (package
// group sets it; PROTOCOL.md, "Groups"); [Advert.Group] holds its value.
const TXTGroup = "grp"

// Advert is a service seen over DNS-SD: a nearnet peer, or any other
// service of the browsed type (then ID is zero).
type Advert struct {
	Name       string            // instance name
	ID         PeerID            // from TXT "id"; zero if absent or malformed
	Version    int               // from TXT "v"
	Transports []string          // from TXT "tr": "ws" (TCP), "quic"
	Service    string            // the service type it was seen under: "_app._tcp" or "_app._udp"
	Host       string            // SRV target host
	Port       int               // SRV port
	Addrs      []netip.Addr      // addresses of Host, IPv4 first; IPv6 link-local ones carry the interface they were seen on as zone (fe80::1%eth0) and are dialled only there
	TXT        map[string]string // every TXT entry, keys in lower case
	Interface  string            // where it was seen: the network interface; empty for a wide-area domain
	Domain     string            // the DNS-SD domain: "local." on the link, or Config.Domain ("example.test.")
	Group      string            // from TXT "grp": the group it is a member of; empty if none
}

// BrowseEventKind says what happened to an advertised service.
type BrowseEventKind int

// Browse event kinds.
const (
	Found   BrowseEventKind = iota + 1 // a service appeared, resolved
	Updated                            // its TXT, port or addresses changed
	Lost                               // it said goodbye or its records expired
)

func (k BrowseEventKind) String() string {
	return enum.Name(k, "BrowseEventKind", "", "found", "updated", "lost")
}

// BrowseEvent is one change seen by Browse.
type BrowseEvent struct {
	Kind BrowseEventKind
	Advert
}

func advertOf(s discovery.Service) Advert {
	a := Advert{Name: s.Instance, Service: s.Type, Host: s.Host, Port: s.Port, Addrs: s.Addrs, TXT: s.TXT, Interface: s.Interface, Domain: s.Domain}
	if id, err := ParsePeerID(s.TXT[txtID]); err == nil {
		a.ID = id
	}
	a.Version, _ = strconv.Atoi(s.TXT[txtVersion])
	a.Group = s.TXT[TXTGroup]
	if tr := s.TXT[txtTransports]; tr != "" {
		a.Transports = strings.Split(tr, ",")
	}
	return a
}

// discoveryConfig is the discovery configuration: the node's interfaces,
// and its path monitor, so that advertisements and browse results follow
// addresses and interfaces as they come and go.
func (n *Node) discoveryConfig() discovery.Config {
	if n.cfg.tunnelOnly() { // mDNS through the stack alone
		return discovery.Config{Logger: n.cfg.Logger, Net: advert.TunnelNet(n.cfg.Tunnel)}
	}
	n.startPathMonitor()
	return discovery.Config{Interfaces: n.cfg.Interfaces, Logger: n.cfg.Logger, Monitor: n.paths.Monitor()}
}

// serviceTypes are the DNS-SD service types of Config.Transport.
func (n *Node) serviceTypes() []string { return advert.Types(n.transports, n.cfg.Service) }

// transportsTXT is the "tr" entry: the transports this node offers.
func (n *Node) transportsTXT() string { return advert.Transports(n.transports) }

// advertise registers this node's service instances, one per transport,
// all on port (both transports listen on the same port number).
func (n *Node) advertise(ctx context.Context, port int) error {
	txt := map[string]string{txtID: n.id.String(), txtVersion: "1", txtTransports: n.transportsTXT()}
	for k, v := range n.cfg.TXT {
		txt[k] = v
	}
	r, name, err := advert.Advertise(ctx, n.discoveryConfig(), n.Name(), n.serviceTypes(), port, txt)
	if err != nil {
		return err
	}
	if err := n.keep(func() error { n.disc, n.name = r, name; return nil }); err != nil {
		r.Close()
		return err
	}
	return n.registerWideArea(ctx, name, port, txt)
}

// Browse looks for services of Config.Service on Config.Interfaces (and,
// when the node dials QUIC, of the same type with "_udp"), and with
// Config.Domain in that wide-area domain too, and calls fn for
// each change until ctx is done; it then returns ctx's error (or, before,
// a permanent wide-area failure: a *discovery.DNSError). A nearnet
// peer that offers both transports advertises under both types but is
// reported once per interface (the wide-area domain counting as one, with
// Advert.Domain set and no Interface): Found when first seen under either,
// Updated when what it advertises changes (Advert.Service names the type
// of the sighting reported), Lost once it is gone from both. fn is called
// once at a time; this node's own advertisement is skipped. Nearnet peers
// seen here are remembered for Connect by name or PeerID.
func (n *Node) Browse(ctx context.Context, fn func(BrowseEvent)) error {
	if n.cfg.noDiscovery() {
		return ErrNoDiscovery
	}
	var fnMu sync.Mutex      // guards merged too
	var merged advert.Merger // the same peer under both service types: one story
	return advert.Browse(ctx, n.discoveryConfig(), n.wideAreaConfig(), n.serviceTypes(), func(e discovery.Event) {
		a := advertOf(e.Service)
		if a.ID == n.id || e.Kind < discovery.Found || e.Kind > discovery.Lost {
			return
		}
		if !a.ID.IsZero() {
			n.mu.Lock()
			if e.Kind == discovery.Lost {
				if old, ok := n.adverts[a.ID]; ok && old.Name == a.Name && old.Service == a.Service && old.Domain == a.Domain {
					delete(n.adverts, a.ID)
				}
			} else if old, ok := n.adverts[a.ID]; !ok || n.preferAdvert(a, old) {
				n.adverts[a.ID] = a
			}
			n.mu.Unlock()
		}
		if fn != nil {
			fnMu.Lock()
			if k, svc, ok := merged.Add(e.Kind, e.Service, a.ID); ok {
				fn(BrowseEvent{Kind: BrowseEventKind(k), Advert: advertOf(svc)})
			}
			fnMu.Unlock()
		}
	})
}

// preferAdvert reports whether a, seen under one service type, should
// replace old for Connect by name or ID: the one under the type of the
// transport dialed first wins.
func (n *Node) preferAdvert(a, old Advert) bool {
	if a.isWideArea() != old.isWideArea() {
		return !a.isWideArea() // the link's is the shorter path
	}
	if a.Service == old.Service {
		return true
	}
	order := n.dialer.Order(nil)
	return len(order) > 0 && order[0].Service(n.cfg.Service) == a.Service
}

// Resolve finds the advertisement of a nearnet peer by PeerID (text form)
// or instance name (ignoring case, as DNS does), from what a running Browse
// has seen or by browsing until it appears or ctx is done. Not finding it,
// the error lists the nearnet peers browsing saw.
func (n *Node) Resolve(ctx context.Context, target string) (Advert, error) {
	id, idErr := ParsePeerID(target)
	match := func(a Advert) bool {
		if idErr == nil {
			return a.ID == id
		}
		return strings.EqualFold(a.Name, target) && !a.ID.IsZero() // DNS-SD names ignore ASCII case
	}
	n.mu.Lock()
	for _, a := range n.adverts {
		if match(a) {
			n.mu.Unlock()
			return a, nil
		}
	}
	n.mu.Unlock()
	return advert.Find(ctx, target, func(ctx context.Context, see func(Advert, discovery.EventKind, string, bool, bool)) error {
		return n.Browse(ctx, func(e BrowseEvent) {
			see(e.Advert, discovery.EventKind(e.Kind), e.Name, !e.ID.IsZero(), match(e.Advert))
		})
	})
}
