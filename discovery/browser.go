package discovery

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Timing of the browser (RFC 6762 §5.2).
const (
	firstQueryInterval = time.Second
	maxQueryInterval   = time.Hour
	maxResolveInterval = time.Minute
	// goodbyeDelay: a record with TTL 0, or one flushed by a cache-flush
	// record, is deleted one second later (RFC 6762 §10.1, §10.2).
	goodbyeDelay = time.Second
	// maxCache bounds the records a browser keeps.
	maxCache = 4096
)

// EventKind says what happened to a browsed service.
type EventKind int

const (
	// Found: the service is resolved (SRV, TXT and at least one address
	// are known) for the first time, or again after it was lost.
	Found EventKind = iota + 1
	// Updated: the TXT attributes, host, port or addresses of a found
	// service changed.
	Updated
	// Lost: the service said goodbye, or its records expired without a
	// refresh. A goodbye takes effect one second after it arrives
	// (RFC 6762 §10.1). Event.Service holds its last known state.
	Lost
)

func (k EventKind) String() string {
	switch k {
	case Found:
		return "Found"
	case Updated:
		return "Updated"
	case Lost:
		return "Lost"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText returns the kind's name ("Found", "Updated", "Lost").
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a name written by MarshalText.
func (k *EventKind) UnmarshalText(b []byte) error {
	for _, c := range []EventKind{Found, Updated, Lost} {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("discovery: unknown event kind %q", b)
}

// Event is one change to a browsed service. Service is a copy the receiver
// may keep.
type Event struct {
	Kind    EventKind
	Service Service
}

// Browser finds the instances of one service type on the local network and
// follows their changes. Create one with [NewBrowser] (or use [Browse]); it
// owns two UDP sockets per family (one on port 5353, shared, and an
// ephemeral one for the first, one-shot query) and five goroutines until
// Close. Its methods
// are safe for concurrent use.
//
// A Browser queries as soon as it starts, then again after 1 s, 2 s, 4 s
// and so on up to an hour (RFC 6762 §5.2), listing the instances it already
// knows (known-answer suppression). It refreshes each record at 80-95 % of
// its TTL, resolves instances whose SRV, TXT or address records were not in
// the answer, and forgets records on goodbye or expiry.
//
// A service seen on several interfaces, or over both IPv4 and IPv6, is
// reported once: Addrs is the union of the addresses (A and AAAA) learned
// on all of them, IPv6 link-local ones with the interface they were learned
// on as zone ("fe80::1%eth0"), Interface is where its
// current SRV record came from, and it is Lost only when it is gone from
// every interface.
type Browser struct {
	log     *slog.Logger
	names   []string // Config.Interfaces
	nw      Net      // Config.Net, or the host's
	links   []*link  // loop-owned after NewBrowser
	conn    *mconn   // port 5353
	oneshot *mconn   // ephemeral port: legacy unicast one-shot queries
	stats   counters
	typ     string
	svcName string // lower-case "_type._tcp.local."
	fn      func(Event)

	in        chan inbound
	kick      chan struct{} // capacity 1: the path monitor saw a change
	done      chan struct{}
	stopWatch context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu      sync.Mutex // guards visible
	visible map[string]Service

	// Loop-owned state.
	cache         map[cacheKey]*entry
	byName        map[string]map[cacheKey]*entry // cache indexed by lower-case owner name
	insts         map[string]*instance           // by lower-case instance name
	queryAt       time.Time
	queryInterval time.Duration
	relinkAt      time.Time // when to follow changes the monitor reported; zero: none pending
}

type cacheKey struct {
	link int
	key  rrKey
}

type entry struct {
	rr       dns.RR
	lname    string // lower-case owner name
	link     *link
	received time.Time
	ttl      time.Duration
	expires  time.Time
	refresh  int       // refresh queries sent for this TTL (0-4)
	next     time.Time // next refresh query
}

type instance struct {
	name      string // full name as received
	shown     bool
	last      Service
	resolveAt time.Time
	resolveIv time.Duration
}

// NewBrowser starts browsing for serviceType (for example "_nearnet._tcp",
// see [ValidateServiceType]) in the "local." domain on the interfaces in
// cfg. fn receives the events; it is called from a single goroutine, one
// event at a time and in order, and packets are not processed while it
// runs, so it should return quickly. fn must not call [Browser.Close] (that
// would deadlock); a nil fn is allowed when only [Browser.Services] is used.
// After Close returns, fn is not called again.
func NewBrowser(cfg Config, serviceType string, fn func(Event)) (*Browser, error) {
	if err := ValidateServiceType(serviceType); err != nil {
		return nil, err
	}
	log := cfg.logger()
	links, err := resolveLinks(cfg.netOf(), cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	if fn == nil {
		fn = func(Event) {}
	}
	b := &Browser{
		log:     log,
		names:   slices.Clone(cfg.Interfaces),
		nw:      cfg.netOf(),
		links:   links,
		typ:     serviceType,
		svcName: strings.ToLower(serviceName(serviceType, localDomain)),
		fn:      fn,
		in:      make(chan inbound, 64),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		visible: map[string]Service{},
		cache:   map[cacheKey]*entry{},
		byName:  map[string]map[cacheKey]*entry{},
		insts:   map[string]*instance{},
	}
	if b.conn, err = openConn(cfg.netOf(), links, mdnsPort, log, &b.stats); err != nil {
		return nil, err
	}
	if b.oneshot, err = openConn(cfg.netOf(), links, 0, log, &b.stats); err != nil {
		b.conn.close()
		return nil, err
	}
	b.conn.start(&b.wg, b.in, b.done)
	b.oneshot.start(&b.wg, b.in, b.done)
	b.wg.Go(b.loop)
	b.stopWatch = watchMonitor(cfg.Monitor, b.names, b.kick, &b.wg)
	return b, nil
}

// Browse runs a [Browser] until ctx is done, delivering events to fn as
// [NewBrowser] describes (fn may cancel ctx). It returns nil after ctx is
// done, or the error that kept browsing from starting.
func Browse(ctx context.Context, cfg Config, serviceType string, fn func(Event)) error {
	b, err := NewBrowser(cfg, serviceType, fn)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}

// Close stops browsing, closes the sockets and waits for the goroutines. No
// Lost events are delivered for the services still visible. Close is
// idempotent.
func (b *Browser) Close() error {
	var err error
	b.closeOnce.Do(func() {
		close(b.done)
		b.stopWatch()
		err = b.conn.close()
		b.oneshot.close()
		b.wg.Wait()
	})
	return err
}

// Services returns the services currently found, sorted by instance name.
func (b *Browser) Services() []Service {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Service, 0, len(b.visible))
	for _, s := range b.visible {
		out = append(out, s.clone())
	}
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.Instance, b.Instance) })
	return out
}

// Stats returns the counts of received packets and of malformed packets and
// records.
func (b *Browser) Stats() Stats { return b.stats.snapshot() }

func (b *Browser) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	now := time.Now()
	b.queryAt = now // query at once, not after the RFC's 20-120 ms
	b.queryInterval = 0
	for {
		select {
		case <-b.done:
			return
		default:
		}
		now = time.Now()
		b.runDue(now)
		timer.Reset(time.Until(b.nextDeadline(now)))
		select {
		case <-b.done:
			return
		case in := <-b.in:
			b.handle(in)
		case <-b.kick:
			if b.relinkAt.IsZero() {
				b.relinkAt = time.Now().Add(relinkDelay)
			}
		case <-timer.C:
		}
	}
}

func (b *Browser) nextDeadline(now time.Time) time.Time {
	next := b.queryAt
	if !b.relinkAt.IsZero() && b.relinkAt.Before(next) {
		next = b.relinkAt
	}
	for _, e := range b.cache {
		if e.refresh < 4 && e.next.Before(next) {
			next = e.next
		}
		if e.expires.Before(next) {
			next = e.expires
		}
	}
	for _, in := range b.insts {
		if !in.resolveAt.IsZero() && in.resolveAt.Before(next) {
			next = in.resolveAt
		}
	}
	if next.Before(now) {
		next = now
	}
	return next
}

// outQuery collects the questions and known answers for one interface.
type outQuery struct {
	qs    []dns.Question
	seen  map[dns.Question]bool
	known []dns.RR
}

func (b *Browser) runDue(now time.Time) {
	if !b.relinkAt.IsZero() && !b.relinkAt.After(now) {
		b.relinkAt = time.Time{}
		b.relink(now)
	}
	// Expire records.
	changed := false
	for k, e := range b.cache {
		if !e.expires.After(now) {
			b.del(k)
			changed = true
		}
	}
	if changed {
		b.reconcile(now)
	}
	out := map[*link]*outQuery{}
	ask := func(l *link, name string, t uint16) {
		o := out[l]
		if o == nil {
			o = &outQuery{seen: map[dns.Question]bool{}}
			out[l] = o
		}
		q := dns.Question{Name: name, Qtype: t, Qclass: dns.ClassINET}
		if !o.seen[q] {
			o.seen[q] = true
			o.qs = append(o.qs, q)
		}
	}
	first := b.queryInterval == 0
	if !b.queryAt.After(now) {
		for _, l := range b.links {
			ask(l, b.svcName, dns.TypePTR)
		}
		if b.queryInterval == 0 {
			b.queryInterval = firstQueryInterval
		} else if b.queryInterval *= 2; b.queryInterval > maxQueryInterval {
			b.queryInterval = maxQueryInterval
		}
		b.queryAt = now.Add(b.queryInterval)
	}
	// Refresh records at 80, 85, 90 and 95 % of their TTL (RFC 6762 §5.2).
	for _, e := range b.cache {
		if e.refresh < 4 && !e.next.After(now) {
			ask(e.link, e.rr.Header().Name, e.rr.Header().Rrtype)
			e.refresh++
			e.next = refreshTime(e, e.refresh)
		}
	}
	// Resolve instances that lack SRV, TXT or addresses.
	for key, in := range b.insts {
		if in.resolveAt.IsZero() || in.resolveAt.After(now) {
			continue
		}
		srv, txt, addrs := b.parts(key)
		for _, l := range b.linksOf(key) {
			if srv == nil {
				ask(l, in.name, dns.TypeSRV)
			}
			if txt == nil {
				ask(l, in.name, dns.TypeTXT)
			}
			if srv != nil && len(addrs) == 0 {
				ask(l, srv.rr.(*dns.SRV).Target, dns.TypeA)
				ask(l, srv.rr.(*dns.SRV).Target, dns.TypeAAAA)
			}
		}
		if in.resolveIv == 0 {
			in.resolveIv = firstQueryInterval
		} else if in.resolveIv *= 2; in.resolveIv > maxResolveInterval {
			in.resolveIv = maxResolveInterval
		}
		in.resolveAt = now.Add(in.resolveIv)
	}
	for l, o := range out {
		// Known answers: records answering our questions whose remaining
		// TTL is more than half the original (RFC 6762 §7.1).
		for _, q := range o.qs {
			for _, e := range b.byName[strings.ToLower(q.Name)] {
				if e.link != l || e.rr.Header().Rrtype != q.Qtype {
					continue
				}
				if left := e.expires.Sub(now); left > e.ttl/2 {
					o.known = append(o.known, withTTL(e.rr, uint32(left/time.Second), false))
				}
			}
		}
		pkts, err := packSplit(dns.MsgHdr{}, o.qs, o.known, nil, nil, l.limit, true)
		if err != nil {
			b.log.Warn("mdns: cannot pack query", "err", err)
			continue
		}
		for _, p := range pkts {
			if err := b.conn.sendMulticast(l, p); err != nil {
				b.log.Debug("mdns: query send failed", "iface", l.name(), "err", err)
			}
		}
		if first {
			// The first query also goes out as a one-shot query from an
			// ephemeral port (RFC 6762 §5.1). Responders answer it by
			// unicast at once, whatever they multicast recently, and the
			// answer reaches this browser even when other sockets on this
			// host share port 5353. Its TTLs are capped at 10 s; the
			// multicast answers that follow bring the real ones.
			m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: dns.Id()}, Question: []dns.Question{{Name: b.svcName, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}}
			if pb, err := m.Pack(); err == nil {
				if err := b.oneshot.sendMulticast(l, pb); err != nil {
					b.log.Debug("mdns: one-shot query send failed", "iface", l.name(), "err", err)
				}
			}
		}
	}
}

func refreshTime(e *entry, step int) time.Time {
	if step >= 4 {
		return e.expires
	}
	pct := 80 + 5*step
	jitter := time.Duration(mrand.N(int64(e.ttl)/50 + 1)) // 0-2 %
	return e.received.Add(e.ttl*time.Duration(pct)/100 + jitter)
}

// ---- receiving ----

// relink applies Config.Interfaces to the interfaces there are now: records
// learned on interfaces that went away are forgotten (their services
// updated or lost), and interfaces that appeared are joined and queried at
// once, as at start.
func (b *Browser) relink(now time.Time) {
	next := reselectLinks(b.nw, b.names, b.links)
	byIdx := map[int]*link{}
	for _, l := range next {
		byIdx[l.ifi.Index] = l
	}
	dropped := false
	for k, e := range b.cache {
		if l := byIdx[k.link]; l == nil {
			b.del(k)
			dropped = true
		} else {
			e.link = l // the same interface, perhaps with a new MTU
		}
	}
	for _, l := range next {
		if !slices.ContainsFunc(b.links, func(o *link) bool { return o.ifi.Index == l.ifi.Index }) {
			b.log.Debug("mdns: browsing on new interface", "iface", l.name())
			b.queryAt, b.queryInterval = now, 0
		}
	}
	b.conn.setLinks(next)
	b.oneshot.setLinks(next)
	b.links = next
	if dropped {
		b.reconcile(now)
	}
}

func (b *Browser) handle(in inbound) {
	if !slices.Contains(b.links, in.link) {
		return // read just before its interface was dropped
	}
	p := in.p
	if !p.response || p.opcode != 0 || p.rcode != 0 {
		return
	}
	if in.src.Port() != mdnsPort {
		return // RFC 6762 §6: responses come from port 5353
	}
	now := in.at
	var addrRecs []record
	for _, rec := range p.records {
		if rec.sec == secAuthority {
			continue
		}
		h := rec.rr.Header()
		if h.Class != dns.ClassINET {
			continue
		}
		name := strings.ToLower(h.Name)
		switch v := rec.rr.(type) {
		case *dns.PTR:
			if name != b.svcName || !b.isInstance(v.Ptr) {
				continue
			}
		case *dns.SRV, *dns.TXT:
			if !b.isInstance(h.Name) {
				continue
			}
		case *dns.A, *dns.AAAA:
			a, _ := rrAddr(rec.rr)
			if why := addrProblem(rec.rr, a, in.link); why != "" {
				b.stats.ignoredAddrs.Add(1)
				b.log.Debug("mdns: ignored address record", "name", h.Name, "addr", a, "from", in.src, "iface", in.link.name(), "why", why)
				continue
			}
			addrRecs = append(addrRecs, rec)
			continue
		default:
			continue
		}
		b.store(in.link, rec, now)
	}
	// Address records after the SRV records, whatever their order in the
	// packet, so that the targets are known.
	if len(addrRecs) > 0 {
		targets := map[string]bool{}
		for _, e := range b.cache {
			if s, ok := e.rr.(*dns.SRV); ok {
				targets[strings.ToLower(s.Target)] = true
			}
		}
		for _, rec := range addrRecs {
			if targets[strings.ToLower(rec.rr.Header().Name)] {
				b.store(in.link, rec, now)
			}
		}
	}
	b.reconcile(now)
}

// isInstance reports whether name is "<instance>.<our service type>".
func (b *Browser) isInstance(name string) bool {
	label, rest, ok := splitFirstLabel(name)
	return ok && label != "" && strings.ToLower(rest) == b.svcName
}

func (b *Browser) store(l *link, rec record, now time.Time) {
	h := rec.rr.Header()
	ck := cacheKey{l.ifi.Index, keyOf(rec.rr)}
	if rec.flush && h.Ttl > 0 {
		// Cache flush (RFC 6762 §10.2): other records of this name and
		// type on this interface, received more than a second ago, go
		// in one second. Not for a goodbye (TTL 0), whatever its bit
		// says: it withdraws only itself, so a host that lost one of
		// its addresses keeps the others.
		for k, e := range b.byName[ck.key.name] {
			if k.link == ck.link && k != ck && k.key.rtype == ck.key.rtype &&
				now.Sub(e.received) > goodbyeDelay && e.expires.After(now.Add(goodbyeDelay)) {
				e.expires = now.Add(goodbyeDelay)
				e.refresh = 4
			}
		}
	}
	e := b.cache[ck]
	if h.Ttl == 0 {
		if e != nil && e.expires.After(now.Add(goodbyeDelay)) {
			e.expires = now.Add(goodbyeDelay) // goodbye, RFC 6762 §10.1
			e.refresh = 4
		}
		return
	}
	if e == nil {
		if len(b.cache) >= maxCache {
			b.log.Warn("mdns: browser cache full, dropping record", "name", h.Name)
			return
		}
		e = &entry{link: l, lname: ck.key.name}
		b.put(ck, e)
	}
	e.rr = rec.rr
	e.received = now
	e.ttl = time.Duration(h.Ttl) * time.Second
	e.expires = now.Add(e.ttl)
	e.refresh = 0
	e.next = refreshTime(e, 0)
}

func (b *Browser) put(k cacheKey, e *entry) {
	b.cache[k] = e
	m := b.byName[e.lname]
	if m == nil {
		m = map[cacheKey]*entry{}
		b.byName[e.lname] = m
	}
	m[k] = e
}

func (b *Browser) del(k cacheKey) {
	e := b.cache[k]
	if e == nil {
		return
	}
	delete(b.cache, k)
	if m := b.byName[e.lname]; m != nil {
		delete(m, k)
		if len(m) == 0 {
			delete(b.byName, e.lname)
		}
	}
}

// parts returns the newest SRV and TXT of an instance and the addresses of
// the SRV target, over all interfaces; an IPv6 link-local address has the
// interface it was learned on as zone, so it is never dialled on another.
func (b *Browser) parts(key string) (srvE, txtE *entry, addrs []netip.Addr) {
	for _, e := range b.byName[key] {
		switch e.rr.(type) {
		case *dns.SRV:
			if srvE == nil || e.received.After(srvE.received) {
				srvE = e
			}
		case *dns.TXT:
			if txtE == nil || e.received.After(txtE.received) {
				txtE = e
			}
		}
	}
	if srvE == nil {
		return nil, txtE, nil
	}
	for _, e := range b.byName[strings.ToLower(srvE.rr.(*dns.SRV).Target)] {
		if a, ok := rrAddr(e.rr); ok && !slices.Contains(addrs, zoned(a, e.link)) {
			a = zoned(a, e.link)
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
	return srvE, txtE, addrs
}

// linksOf returns the interfaces on which the instance's PTR is cached.
func (b *Browser) linksOf(key string) []*link {
	var ls []*link
	for _, e := range b.byName[b.svcName] {
		if p, ok := e.rr.(*dns.PTR); ok && strings.ToLower(p.Ptr) == key && !slices.Contains(ls, e.link) {
			ls = append(ls, e.link)
		}
	}
	return ls
}

// reconcile recomputes every instance's view and delivers events.
func (b *Browser) reconcile(now time.Time) {
	ptrs := map[string]string{}
	for _, e := range b.byName[b.svcName] {
		if p, ok := e.rr.(*dns.PTR); ok {
			ptrs[strings.ToLower(p.Ptr)] = p.Ptr
		}
	}
	for key, name := range ptrs {
		if b.insts[key] == nil {
			b.insts[key] = &instance{name: name}
		}
	}
	keys := make([]string, 0, len(b.insts))
	for k := range b.insts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		in := b.insts[key]
		_, hasPTR := ptrs[key]
		srv, txt, addrs := b.parts(key)
		complete := hasPTR && srv != nil && txt != nil && len(addrs) > 0
		if hasPTR && !complete {
			if in.resolveAt.IsZero() {
				in.resolveAt = now // ask for what is missing at once
				in.resolveIv = 0
			}
		} else {
			in.resolveAt = time.Time{}
		}
		if !hasPTR {
			if in.shown {
				b.emit(key, Event{Kind: Lost, Service: in.last})
			}
			delete(b.insts, key)
			continue
		}
		if !complete {
			if in.shown {
				in.shown = false
				b.emit(key, Event{Kind: Lost, Service: in.last})
			}
			continue
		}
		s := b.view(in, srv, txt, addrs)
		switch {
		case !in.shown:
			in.shown, in.last = true, s
			b.emit(key, Event{Kind: Found, Service: s})
		case changed(in.last, s):
			in.last = s
			b.emit(key, Event{Kind: Updated, Service: s})
		default:
			in.last.Interface = s.Interface
		}
	}
}

func (b *Browser) view(in *instance, srvE, txtE *entry, addrs []netip.Addr) Service {
	label, _, _ := splitFirstLabel(in.name)
	srv := srvE.rr.(*dns.SRV)
	return Service{
		Instance:  label,
		Type:      b.typ,
		Domain:    localDomain,
		Host:      srv.Target,
		Port:      int(srv.Port),
		Addrs:     addrs,
		TXT:       DecodeTXT(txtStrings(txtE.rr.(*dns.TXT))),
		Interface: srvE.link.name(),
	}
}

func changed(a, b Service) bool {
	return a.Port != b.Port || !strings.EqualFold(a.Host, b.Host) || !slices.Equal(a.Addrs, b.Addrs) || !txtEqual(a.TXT, b.TXT)
}

func (b *Browser) emit(key string, ev Event) {
	b.mu.Lock()
	if ev.Kind == Lost {
		delete(b.visible, key)
	} else {
		b.visible[key] = ev.Service.clone()
	}
	b.mu.Unlock()
	b.log.Debug("mdns: browse event", "kind", ev.Kind, "instance", ev.Service.Instance)
	ev.Service = ev.Service.clone()
	b.fn(ev)
}
