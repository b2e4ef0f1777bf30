package discovery

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Answerer is an mDNS responder that answered a service type enumeration:
// where it answered from, on which interface, and the service types it
// named ("_ipp._tcp", ...).
type Answerer struct {
	Addr      netip.Addr
	Interface string
	Types     []string
}

// Responders asks the mDNS responders on the interfaces of cfg which
// service types they advertise (RFC 6763 section 9: a PTR query for
// "_services._dns-sd._udp.local.", sent from an ephemeral port so that they
// answer by unicast, RFC 6762 section 6.7) and returns those that answered
// before ctx was done, one per source address. It tells whether anybody
// else's mDNS gets through: a network where our own announcements come
// back but nobody answers has no other responders, or filters them.
func Responders(ctx context.Context, cfg Config) ([]Answerer, error) {
	links, err := resolveLinks(cfg.netOf(), cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	var stats counters
	conn, err := openConn(cfg.netOf(), links, 0, cfg.logger(), &stats)
	if err != nil {
		return nil, err
	}
	in := make(chan inbound, 64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	conn.start(&wg, in, done)
	defer func() {
		close(done)
		conn.close()
		wg.Wait()
	}()
	q := new(dns.Msg)
	q.SetQuestion(servicesEnum, dns.TypePTR)
	q.RecursionDesired = false
	query, err := q.Pack()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if err := conn.sendMulticast(l, query); err != nil {
			cfg.logger().Debug("mdns: enumeration query not sent", "iface", l.name(), "err", err)
		}
	}
	found := map[netip.Addr]*Answerer{}
	var order []netip.Addr
	for {
		select {
		case <-ctx.Done():
			out := make([]Answerer, 0, len(order))
			for _, a := range order {
				out = append(out, *found[a])
			}
			return out, nil
		case p := <-in:
			if !p.p.response {
				continue
			}
			var types []string
			for _, r := range p.p.records {
				if ptr, ok := r.rr.(*dns.PTR); ok && strings.EqualFold(ptr.Hdr.Name, servicesEnum) {
					t := strings.TrimSuffix(strings.TrimSuffix(ptr.Ptr, "."), ".local")
					if !slices.Contains(types, t) {
						types = append(types, t)
					}
				}
			}
			if len(types) == 0 {
				continue
			}
			src := p.src.Addr()
			a := found[src]
			if a == nil {
				a = &Answerer{Addr: src, Interface: p.link.name()}
				found[src] = a
				order = append(order, src)
			}
			for _, t := range types {
				if !slices.Contains(a.Types, t) {
					a.Types = append(a.Types, t)
				}
			}
		}
	}
}
