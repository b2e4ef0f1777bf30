package discovery

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// BrowseWideArea lists the instances of serviceType in cfg.Domain and
// follows their changes until ctx is done, polling the server every
// cfg.Refresh with ordinary unicast queries: the PTR records of
// _type._tcp.Domain, then each instance's SRV and TXT records and its
// host's A, AAAA and lease records. It calls fn with the same [Found],
// [Updated] and [Lost] events as an mDNS [Browser]; Service.Domain is the
// domain and Service.Interface is empty. An instance is reported once
// resolved (SRV, TXT and at least one address) and lost when its records
// are removed or its lease (see [RegisterWideArea]) has ended. fn is
// called from one goroutine at a time.
//
// DNS Push (RFC 8765) would let the server tell us about changes instead;
// BIND9 does not offer it and this browser does not use it: it polls.
//
// A permanent failure (the server refuses the query) ends the browse with
// a [*DNSError]; a transient one (no answer) is logged and the next poll
// tries again, reporting nothing lost meanwhile. When ctx is done it
// returns ctx's error.
func BrowseWideArea(ctx context.Context, cfg WideAreaConfig, serviceType string, fn func(Event)) error {
	if err := ValidateServiceType(serviceType); err != nil {
		return err
	}
	w, err := newWideArea(cfg)
	if err != nil {
		return err
	}
	seen := map[string]Service{} // by lower-case instance name
	for {
		now, err := w.poll(ctx, serviceType)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isPermanent(err) {
				return err
			}
			w.log.Warn("dns-sd: wide-area browse poll failed", "domain", cfg.Domain, "err", err)
		} else {
			for key, old := range seen {
				if _, ok := now[key]; !ok {
					delete(seen, key)
					fn(Event{Kind: Lost, Service: old.clone()})
				}
			}
			for _, key := range slices.Sorted(maps.Keys(now)) {
				s := now[key]
				old, ok := seen[key]
				seen[key] = s
				switch {
				case !ok:
					fn(Event{Kind: Found, Service: s.clone()})
				case changed(old, s):
					fn(Event{Kind: Updated, Service: s.clone()})
				}
			}
		}
		t := time.NewTimer(w.cfg.Refresh)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// poll returns the resolved, live instances of serviceType now.
func (w *wideArea) poll(ctx context.Context, serviceType string) (map[string]Service, error) {
	typeName := serviceName(serviceType, w.domain)
	ptrs, err := w.client.Query(ctx, typeName, dns.TypePTR)
	if err != nil {
		return nil, dnsErr(err)
	}
	out := map[string]Service{}
	n := 0
	for _, rr := range ptrs {
		ptr, ok := rr.(*dns.PTR)
		if !ok || !strings.EqualFold(ptr.Hdr.Name, typeName) {
			continue
		}
		label, rest, ok := splitFirstLabel(ptr.Ptr)
		if !ok || !strings.EqualFold(rest, typeName) || ValidateInstance(label) != nil {
			continue
		}
		if n++; n > maxWideAreaInstances {
			w.log.Warn("dns-sd: wide-area browse: too many instances, ignoring the rest", "type", typeName, "limit", maxWideAreaInstances)
			break
		}
		s, ok, err := w.resolve(ctx, ptr.Ptr, label, serviceType)
		if err != nil {
			return nil, err
		}
		if ok {
			out[strings.ToLower(label)] = s
		}
	}
	return out, nil
}

// resolve reads one instance's records; ok is false if it is not resolved
// or its lease has ended.
func (w *wideArea) resolve(ctx context.Context, inst, label, serviceType string) (Service, bool, error) {
	q := func(name string, t uint16) ([]dns.RR, error) {
		rrs, err := w.client.Query(ctx, name, t)
		if err != nil {
			return nil, dnsErr(err)
		}
		return rrs, nil
	}
	srvs, err := q(inst, dns.TypeSRV)
	if err != nil {
		return Service{}, false, err
	}
	var srv *dns.SRV
	for _, rr := range srvs {
		if s, ok := rr.(*dns.SRV); ok && (srv == nil || s.Priority < srv.Priority) {
			srv = s
		}
	}
	if srv == nil || srv.Port == 0 {
		return Service{}, false, nil
	}
	txts, err := q(inst, dns.TypeTXT)
	if err != nil {
		return Service{}, false, err
	}
	var txt []string
	haveTXT := false
	for _, rr := range txts {
		if t, ok := rr.(*dns.TXT); ok {
			txt = append(txt, t.Txt...)
			haveTXT = true
		}
	}
	if !haveTXT {
		return Service{}, false, nil
	}
	end, hasLease, err := w.leaseEnd(ctx, srv.Target)
	if err != nil {
		return Service{}, false, dnsErr(err)
	}
	if hasLease && !time.Now().Before(end) {
		return Service{}, false, nil
	}
	var addrs []netip.Addr
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := q(srv.Target, t)
		if err != nil {
			return Service{}, false, err
		}
		for _, rr := range rrs {
			var a netip.Addr
			switch r := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(r.A.To4())
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(r.AAAA)
				if a.Is4In6() {
					continue
				}
			default:
				continue
			}
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() {
				continue
			}
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		return Service{}, false, nil
	}
	return Service{
		Instance: label,
		Type:     serviceType,
		Domain:   w.domain,
		Host:     srv.Target,
		Port:     int(srv.Port),
		Addrs:    addrs,
		TXT:      DecodeTXT(txt),
	}, true, nil
}
