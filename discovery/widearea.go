package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/unicastdns"
)

// DefaultWideAreaRefresh is WideAreaConfig.Refresh's default.
const DefaultWideAreaRefresh = 30 * time.Second

// leaseKey is the TXT key, at a registration's host name, that holds the
// Unix time its lease ends (see [RegisterWideArea]).
const leaseKey = "nearnet-lease"

// leaseFactor: a registration's lease is this many refresh intervals, so
// one or two lost refreshes do not make it disappear.
const leaseFactor = 3

// maxWideAreaInstances bounds the instances a browse resolves per poll
// and a registration sweeps, so a crowded domain costs bounded work.
const maxWideAreaInstances = 256

// WideAreaConfig configures DNS-SD over unicast DNS (RFC 6763 in a domain
// other than local.): where to register with DNS UPDATE (RFC 2136) and to
// browse with ordinary queries. The zero value is not usable: Domain and
// Server are required. Functions copy it.
type WideAreaConfig struct {
	// Domain is the DNS-SD domain, e.g. "example.test": service types are
	// browsed at _type._tcp.Domain, instances registered below them.
	// Required.
	Domain string

	// Server is the address of the DNS server authoritative for Domain,
	// "host:port" or a bare host for port 53. Queries and updates go to it
	// directly (not through the system's resolver, whose cache would hide
	// changes). Required.
	Server string

	// Key signs registrations. The server must allow updates of Domain with
	// it. If zero, updates go unsigned (only a server that allows updates
	// by address accepts them); browsing needs no key.
	Key TSIGKey

	// Refresh is how often a registration is rewritten (and its lease
	// renewed) and how often a browse polls the server. A registration
	// whose refreshes stop disappears from browsing after 3 × Refresh (its
	// lease) and is removed from the zone by the next live registrant's
	// sweep. Records carry Refresh as their TTL. If zero,
	// DefaultWideAreaRefresh (30 s); at least one second.
	Refresh time.Duration

	// Interfaces names the interfaces whose addresses a registration
	// publishes when its Service has no Addrs, as [Config.Interfaces] does
	// for mDNS (a loopback interface only when named). Link-local addresses
	// are never published: they mean nothing beyond their link.
	Interfaces []string

	// OnRefresh, if set, hears how a registration's refreshes go when
	// that changes: with the error when a refresh fails after the previous
	// one (or the first update, whose error RegisterWideArea returned)
	// succeeded, and with nil when one succeeds after failures. Failed
	// refreshes are retried at the next interval. It is called from the
	// registration's goroutine, holding no lock, and must not block for
	// long. If nil, failures are only logged.
	OnRefresh func(err error)

	// Logger receives debug messages and warnings (failed refreshes). If
	// nil, nothing is logged.
	Logger *slog.Logger
}

type wideArea struct {
	cfg    WideAreaConfig
	domain string // canonical, with the trailing dot
	client *unicastdns.Client
	log    *slog.Logger
}

func newWideArea(cfg WideAreaConfig) (*wideArea, error) {
	bad := func(field string, v any, reason string) error {
		return &FieldError{Field: "WideAreaConfig." + field, Value: fmt.Sprint(v), Reason: reason}
	}
	if cfg.Domain == "" {
		return nil, bad("Domain", "", "required: the DNS-SD domain, e.g. example.test")
	}
	if _, ok := dns.IsDomainName(cfg.Domain); !ok || strings.Trim(cfg.Domain, ".") == "" {
		return nil, bad("Domain", cfg.Domain, "must be a domain name")
	}
	if d := strings.ToLower(strings.TrimSuffix(cfg.Domain, ".")); d == "local" || strings.HasSuffix(d, ".local") {
		return nil, bad("Domain", cfg.Domain, "local. is multicast DNS: use a Responder or Browser for it")
	}
	if cfg.Server == "" {
		return nil, bad("Server", "", "required: the address of the DNS server authoritative for Domain")
	}
	if cfg.Refresh < 0 || cfg.Refresh > 0 && cfg.Refresh < time.Second {
		return nil, bad("Refresh", cfg.Refresh, "must be at least 1s (zero means 30s)")
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultWideAreaRefresh
	}
	c, err := unicastdns.New(unicastdns.Config{Server: cfg.Server, Zone: cfg.Domain, Key: cfg.Key.internal()})
	if err != nil {
		return nil, fieldErr(err)
	}
	return &wideArea{cfg: cfg, domain: dns.CanonicalName(cfg.Domain), client: c, log: (&Config{Logger: cfg.Logger}).logger()}, nil
}

func (w *wideArea) ttl() uint32 {
	return uint32(max(1, int(w.cfg.Refresh/time.Second)))
}

func (w *wideArea) lease() time.Duration { return leaseFactor * w.cfg.Refresh }

// WideAreaRegistration is one node's service instances registered in a
// wide-area domain by [RegisterWideArea]: all share one host name, one set
// of addresses and one lease. It refreshes them every Refresh until
// Close. Its methods are safe for concurrent use.
type WideAreaRegistration struct {
	w    *wideArea
	host string // "nn-<hex>.<domain>."

	mu      sync.Mutex // guards svcs, err, records, claims
	svcs    []Service
	err     error // of the last refresh
	records []dns.RR
	claims  []claim // what claimName saw, the prerequisites of the first update; nil after it

	fixedAddrs []netip.Addr // the Service's Addrs, if given: published instead of the interfaces'
	claimed    bool         // the name is checked; owned by the registering goroutine (RegisterWideArea, then loop)
	base       string       // the instance name asked for, before any rename

	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// RegisterWideArea registers svcs (one instance name under one or more
// service types, e.g. "_app._tcp" and "_app._udp") in cfg.Domain with one
// TSIG-signed DNS UPDATE: for each, the PTR record from the service type
// to the instance, the instance's SRV and TXT records, and a PTR from
// _services._dns-sd._udp (RFC 6763 §9); for the host, a random name that
// tells nothing about the device, its A and AAAA records (the Service's
// Addrs, or those of cfg.Interfaces), and a TXT record holding the Unix
// time its lease ends (RFC 2136 has no leases, and BIND9 does not
// implement the Update Lease option of RFC 9664). It then refreshes
// everything every cfg.Refresh, re-reading the addresses, and removes
// what it registered on Close.
//
// An instance name already registered by another live host is renamed to
// "name (2)" and so on, as on the link; the first update requires (RFC 2136
// prerequisites) that the name is still as the check saw it, so of two
// hosts claiming a name at once one is renamed.
// Expired instances (their host's lease ended more than one refresh ago)
// are deleted from the zone by every registrant's refresh, so a node that
// crashed disappears for every browser, not only nearnet's.
//
// The first update is made before RegisterWideArea returns. A permanent
// failure (the key rejected, errors.Is(err, [ErrTSIGKey]); an update
// refused) is returned at once as a [*DNSError]. A transient one (no
// answer, SERVFAIL, after a few tries) is returned too, with the
// registration: it keeps trying at every refresh. Later refresh errors are
// logged and kept for [WideAreaRegistration.Err].
func RegisterWideArea(ctx context.Context, cfg WideAreaConfig, svcs ...Service) (*WideAreaRegistration, error) {
	w, err := newWideArea(cfg)
	if err != nil {
		return nil, err
	}
	if len(svcs) == 0 {
		return nil, &FieldError{Field: "Service", Value: "", Reason: "at least one service to register"}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	r := &WideAreaRegistration{
		w:    w,
		host: "nn-" + hex.EncodeToString(rnd[:]) + "." + w.domain,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, s := range svcs {
		s = s.clone()
		if err := ValidateServiceType(s.Type); err != nil {
			return nil, err
		}
		if err := ValidateInstance(s.Instance); err != nil {
			return nil, err
		}
		if s.Port < 1 || s.Port > 65535 {
			return nil, &FieldError{Field: "Service.Port", Value: strconv.Itoa(s.Port), Reason: "must be 1-65535"}
		}
		if _, err := EncodeTXT(s.TXT); err != nil {
			return nil, err
		}
		if s.Instance != svcs[0].Instance {
			return nil, &FieldError{Field: "Service.Instance", Value: s.Instance, Reason: "every service of one registration has the same instance name"}
		}
		s.Domain = w.domain
		s.Host = r.host
		r.svcs = append(r.svcs, s)
	}
	r.fixedAddrs = r.svcs[0].Addrs
	r.base = r.svcs[0].Instance
	err = r.register(ctx)
	if err != nil && isPermanent(err) {
		return nil, err
	}
	go r.loop(err != nil)
	return r, err
}

// register checks the instance name if that is still to do, then writes
// the records; if another host took the name between the check and the
// update (a prerequisite failed), it checks again.
func (r *WideAreaRegistration) register(ctx context.Context) (err error) {
	defer func() {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}()
	for try := 0; ; try++ {
		if !r.claimed {
			if err := r.claimName(ctx); err != nil {
				return err
			}
			r.claimed = true
			if testHookAfterClaim != nil {
				testHookAfterClaim()
			}
		}
		err = r.refresh(ctx)
		if !isPrerequisite(err) || try >= 8 {
			return err
		}
		r.claimed = false
	}
}

// testHookAfterClaim, if set by a test, runs between the name check and
// the first update.
var testHookAfterClaim func()

// claim is what claimName saw at an instance name: the SRV record of an
// expired holder, or nil for none. The first update requires it unchanged,
// so that of two hosts claiming one name at once only one wins.
type claim struct {
	inst string
	srv  *dns.SRV
}

func isPrerequisite(err error) bool {
	var de *DNSError
	return errors.As(err, &de) && errors.Is(de.err, unicastdns.ErrPrerequisite)
}

// claimName renames the instance while another live host holds its name
// under any of the types.
func (r *WideAreaRegistration) claimName(ctx context.Context) error {
	base := r.base
	r.mu.Lock()
	types := make([]string, len(r.svcs))
	for i, s := range r.svcs {
		types[i] = s.Type
	}
	r.mu.Unlock()
	name := base
	var claims []claim
	for n := 2; ; n++ {
		taken := false
		claims = claims[:0]
		for _, typ := range types {
			inst := instanceName(name, typ, r.w.domain)
			srv, live, err := r.w.holder(ctx, inst)
			if err != nil {
				return dnsErr(err)
			}
			if srv != nil && !strings.EqualFold(srv.Target, r.host) && live {
				taken = true
				break
			}
			claims = append(claims, claim{inst: inst, srv: srv})
		}
		if !taken {
			break
		}
		if n > 32 {
			return ErrConflict
		}
		name = renameInstance(base, n)
	}
	r.mu.Lock()
	for i := range r.svcs {
		r.svcs[i].Instance = name
	}
	r.claims = claims
	r.mu.Unlock()
	return nil
}

// holder returns the SRV record at the instance name (nil if none) and
// whether its host's lease is live (an instance without a lease,
// registered by something else than nearnet, counts as live).
func (w *wideArea) holder(ctx context.Context, inst string) (srv *dns.SRV, live bool, err error) {
	rrs, err := w.client.Query(ctx, inst, dns.TypeSRV)
	if err != nil {
		return nil, false, err
	}
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok {
			srv = s
		}
	}
	if srv == nil || len(rrs) != 1 {
		return srv, srv != nil, nil // several SRV records: not one of ours, leave it alone
	}
	end, ok, err := w.leaseEnd(ctx, srv.Target)
	if err != nil {
		return nil, false, err
	}
	return srv, !ok || time.Now().Before(end), nil
}

// leaseEnd reads the lease TXT record at host.
func (w *wideArea) leaseEnd(ctx context.Context, host string) (end time.Time, ok bool, err error) {
	rrs, err := w.client.Query(ctx, host, dns.TypeTXT)
	if err != nil {
		return time.Time{}, false, err
	}
	var txt []string
	for _, rr := range rrs {
		if t, isTXT := rr.(*dns.TXT); isTXT {
			txt = append(txt, t.Txt...)
		}
	}
	end, ok = parseLease(txt)
	return end, ok, nil
}

// parseLease reads the lease entry of a host's TXT record data: the Unix
// time, in seconds, the lease ends.
func parseLease(txt []string) (time.Time, bool) {
	v, found := DecodeTXT(txt)[leaseKey]
	if !found {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec < 0 || sec > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// Services returns the registered services, with the instance name
// settled on, the host name and the addresses last published.
func (r *WideAreaRegistration) Services() []Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Service, len(r.svcs))
	for i, s := range r.svcs {
		out[i] = s.clone()
	}
	return out
}

// Err returns the error of the last refresh, or nil if it succeeded.
func (r *WideAreaRegistration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// SetTXT sets the TXT entry key to value in every registered service
// (value "" removes it) and asks for a refresh. A TXT record that would no
// longer encode (an entry longer than 255 bytes) is left as it was and
// the error returned.
func (r *WideAreaRegistration) SetTXT(key, value string) error {
	r.mu.Lock()
	svcs := make([]Service, len(r.svcs))
	for i, s := range r.svcs {
		s = s.clone()
		if s.TXT == nil {
			s.TXT = map[string]string{}
		}
		if value == "" {
			delete(s.TXT, key)
		} else {
			s.TXT[key] = value
		}
		if _, err := EncodeTXT(s.TXT); err != nil {
			r.mu.Unlock()
			return err
		}
		svcs[i] = s
	}
	r.svcs = svcs
	r.mu.Unlock()
	r.Refresh()
	return nil
}

// Refresh asks for a refresh now (after an address change, say), without
// waiting for it.
func (r *WideAreaRegistration) Refresh() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop refreshes until Close; failing says whether the first update failed.
func (r *WideAreaRegistration) loop(failing bool) {
	defer close(r.done)
	t := time.NewTicker(r.w.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.w.cfg.Refresh)
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := r.register(ctx)
		if err != nil {
			r.w.log.Warn("dns-sd: wide-area refresh failed", "domain", r.w.cfg.Domain, "err", err)
		}
		if (err != nil) != failing {
			failing = err != nil
			if r.w.cfg.OnRefresh != nil {
				r.w.cfg.OnRefresh(err)
			}
		}
		r.sweep(ctx)
		cancel()
	}
}

// addrs returns the addresses to publish.
func (r *WideAreaRegistration) addrs() []netip.Addr {
	if len(r.fixedAddrs) > 0 {
		return r.fixedAddrs
	}
	return wideAreaAddrs(r.w.cfg.Interfaces)
}

// wideAreaAddrs returns the addresses of the selected interfaces that mean
// something beyond their link: no link-local ones, loopback only from an
// interface named explicitly.
func wideAreaAddrs(names []string) []netip.Addr {
	links, err := resolveLinks(hostNet{}, names)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, l := range links {
		for _, p := range l.addrs() {
			a := p.Addr()
			if a.IsLinkLocalUnicast() || a.IsLoopback() && !l.loopback() {
				continue
			}
			out = append(out, a)
		}
	}
	return out
}

// refresh writes every record in one update, replacing what was there.
func (r *WideAreaRegistration) refresh(ctx context.Context) error {
	r.mu.Lock()
	svcs := append([]Service(nil), r.svcs...)
	claims := r.claims
	r.mu.Unlock()
	addrs := r.addrs()
	ttl := r.w.ttl()
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	var u unicastdns.Update
	for _, c := range claims {
		if c.srv == nil {
			u.RequireNoRRset(c.inst, dns.TypeSRV)
			continue
		}
		u.RequireRRset(c.srv)
		if !strings.EqualFold(c.srv.Target, r.host) {
			u.DeleteName(c.srv.Target) // the expired holder's host records, which nothing would sweep after this
		}
	}
	var records []dns.RR
	for _, s := range svcs {
		typeName := serviceName(s.Type, r.w.domain)
		inst := instanceName(s.Instance, s.Type, r.w.domain)
		txt, _ := EncodeTXT(s.TXT)
		if len(txt) == 0 {
			txt = []string{""} // RFC 6763 §6.1: never an empty TXT record
		}
		u.DeleteRRset(inst, dns.TypeSRV)
		u.DeleteRRset(inst, dns.TypeTXT)
		records = append(records,
			&dns.PTR{Hdr: hdr("_services._dns-sd._udp."+r.w.domain, dns.TypePTR), Ptr: typeName},
			&dns.PTR{Hdr: hdr(typeName, dns.TypePTR), Ptr: inst},
			&dns.SRV{Hdr: hdr(inst, dns.TypeSRV), Port: uint16(s.Port), Target: r.host},
			&dns.TXT{Hdr: hdr(inst, dns.TypeTXT), Txt: txt})
	}
	u.DeleteRRset(r.host, dns.TypeA)
	u.DeleteRRset(r.host, dns.TypeAAAA)
	u.DeleteRRset(r.host, dns.TypeTXT)
	for _, a := range addrs {
		if a.Is4() {
			records = append(records, &dns.A{Hdr: hdr(r.host, dns.TypeA), A: a.AsSlice()})
		} else {
			records = append(records, &dns.AAAA{Hdr: hdr(r.host, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	end := time.Now().Add(r.w.lease())
	records = append(records, &dns.TXT{Hdr: hdr(r.host, dns.TypeTXT), Txt: []string{leaseKey + "=" + strconv.FormatInt(end.Unix(), 10)}})
	u.Add(records...)
	err := r.w.client.Update(ctx, &u)
	if err != nil {
		err = dnsErr(err)
	}
	r.mu.Lock()
	r.err = err
	if err == nil {
		r.records = records
		r.claims = nil
		for i := range r.svcs {
			r.svcs[i].Addrs = append([]netip.Addr(nil), addrs...)
		}
	}
	r.mu.Unlock()
	if err == nil {
		r.w.log.Debug("dns-sd: wide-area registration refreshed", "instance", svcs[0].Instance, "host", r.host, "addrs", addrs)
	}
	return err
}

// sweep deletes, from the zone, instances of our types whose host's lease
// ended more than one refresh ago: nodes that stopped without removing
// their records.
func (r *WideAreaRegistration) sweep(ctx context.Context) {
	r.mu.Lock()
	svcs := append([]Service(nil), r.svcs...)
	r.mu.Unlock()
	grace := r.w.cfg.Refresh
	for _, s := range svcs {
		typeName := serviceName(s.Type, r.w.domain)
		ptrs, err := r.w.client.Query(ctx, typeName, dns.TypePTR)
		if err != nil {
			return
		}
		for i, rr := range ptrs {
			ptr, ok := rr.(*dns.PTR)
			if !ok || i >= maxWideAreaInstances {
				continue
			}
			srvs, err := r.w.client.Query(ctx, ptr.Ptr, dns.TypeSRV)
			if err != nil {
				return
			}
			var host string
			var srv *dns.SRV
			for _, rr := range srvs {
				if s, ok := rr.(*dns.SRV); ok {
					srv, host = s, s.Target
				}
			}
			if strings.EqualFold(host, r.host) {
				continue
			}
			if host != "" {
				end, ok, err := r.w.leaseEnd(ctx, host)
				if err != nil {
					return
				}
				if !ok || time.Since(end) < grace {
					continue // not ours to judge, or still live
				}
			}
			var u unicastdns.Update
			if srv != nil {
				u.RequireRRset(srv) // unless it was registered again meanwhile
			}
			u.Delete(ptr)
			u.DeleteName(ptr.Ptr)
			if host != "" {
				u.DeleteName(host)
			}
			if err := r.w.client.Update(ctx, &u); err != nil {
				r.w.log.Debug("dns-sd: wide-area sweep failed", "instance", ptr.Ptr, "err", err)
				return
			}
			r.w.log.Debug("dns-sd: wide-area sweep removed an expired instance", "instance", ptr.Ptr, "host", host)
		}
	}
}

// abandon stops refreshing without removing anything, as a crash would.
func (r *WideAreaRegistration) abandon() {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
	})
}

// Close stops refreshing and removes the registration's records from the
// zone with one update, waiting at most 5 seconds for the server. The
// error says if the removal failed (the records then stay until another
// registrant's sweep removes them after the lease). Close is idempotent.
func (r *WideAreaRegistration) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		r.mu.Lock()
		svcs := append([]Service(nil), r.svcs...)
		r.mu.Unlock()
		var u unicastdns.Update
		for _, s := range svcs {
			inst := instanceName(s.Instance, s.Type, r.w.domain)
			u.Delete(&dns.PTR{Hdr: dns.RR_Header{Name: serviceName(s.Type, r.w.domain), Rrtype: dns.TypePTR, Class: dns.ClassINET}, Ptr: inst})
			u.DeleteName(inst)
		}
		u.DeleteName(r.host)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.w.client.Update(ctx, &u); err != nil {
			r.closeErr = fmt.Errorf("discovery: removing the wide-area registration: %w", dnsErr(err))
		}
	})
	return r.closeErr
}

// Validate checks the configuration without touching the network. The
// error is a [*FieldError] naming the field ("WideAreaConfig.Domain",
// "WideAreaConfig.Server", "WideAreaConfig.Refresh", "WideAreaConfig.TSIG
// key.Algorithm"...).
func (c WideAreaConfig) Validate() error {
	_, err := newWideArea(c)
	return err
}
