package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/nearnet/nearnet/pathmon"
)

// Timing of the responder (RFC 6762 §8).
const (
	probeInterval    = 250 * time.Millisecond
	probeCount       = 3
	announceCount    = 2
	announceInterval = time.Second
	// tieBreakDelay is how long the loser of a simultaneous probe waits
	// before probing again (RFC 6762 §8.2).
	tieBreakDelay = time.Second
	// maxRenames bounds the conflict renames of one registration.
	maxRenames = 100
	// rateLimit is the minimum gap between two multicasts of one record on
	// one interface in answer to queries (RFC 6762 §6); probe answers may
	// go every probeRateLimit.
	rateLimit      = time.Second
	probeRateLimit = 250 * time.Millisecond
	// sentMemory is how long we remember records we sent, to recognise
	// our own packets looped back to us (IP_MULTICAST_LOOP).
	sentMemory = 10 * time.Second
)

// Responder answers mDNS queries for the services registered with it: it
// probes for unique names, renames on conflict, announces, answers queries
// (multicast, unicast-response QU and legacy unicast) and says goodbye.
//
// Create one per node with [NewResponder]; it owns two UDP sockets bound to
// 0.0.0.0:5353 and [::]:5353 (shared with other responders and browsers
// through SO_REUSEPORT) and three goroutines. A Responder is safe for concurrent use
// by multiple goroutines. Close it to send goodbyes and release the socket.
type Responder struct {
	log   *slog.Logger
	names []string // Config.Interfaces
	nw    Net      // Config.Net, or the host's
	links []*link  // loop-owned after NewResponder
	conn  *mconn
	stats counters

	cmds      chan func()
	in        chan inbound
	kick      chan struct{} // capacity 1: the path monitor saw a change
	done      chan struct{} // closed by Close
	stopWatch context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu   sync.Mutex // guards host
	host string     // default SRV target; may be renamed on conflict

	// Loop-owned state: read and written only by the loop goroutine.
	regs      []*Registration
	verified  map[string]bool      // lower-case host names whose probing succeeded
	pending   map[int]*pendingResp // aggregated multicast answers, by interface index
	history   map[histKey]time.Time
	sent      map[rrKey]time.Time
	nextPrune time.Time
	announced map[int][]netip.Addr // by interface index: the addresses last announced there
	relinkAt  time.Time            // when to follow changes the monitor reported; zero: none pending
}

type histKey struct {
	link int
	key  rrKey
}

// cand is one candidate record for a response.
type cand struct {
	rr     dns.RR // full TTL, class IN
	unique bool   // sent with the cache-flush bit in multicast responses
	extra  []cand // records to put in the Additional section
}

type pendingRR struct {
	c    cand
	srcs map[netip.Addr]bool // queriers still wanting it (for known-answer follow-ups)
}

type pendingResp struct {
	at    time.Time
	order []rrKey
	rrs   map[rrKey]*pendingRR
}

// NewResponder opens the mDNS socket on the interfaces in cfg and starts
// answering. It registers nothing by itself.
func NewResponder(cfg Config) (*Responder, error) {
	log := cfg.logger()
	links, err := resolveLinks(cfg.netOf(), cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	r := &Responder{
		log:       log,
		names:     slices.Clone(cfg.Interfaces),
		nw:        cfg.netOf(),
		links:     links,
		cmds:      make(chan func()),
		in:        make(chan inbound, 64),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		host:      randomHost(),
		verified:  map[string]bool{},
		pending:   map[int]*pendingResp{},
		history:   map[histKey]time.Time{},
		sent:      map[rrKey]time.Time{},
		announced: map[int][]netip.Addr{},
	}
	r.conn, err = openConn(cfg.netOf(), links, mdnsPort, log, &r.stats)
	if err != nil {
		return nil, err
	}
	r.conn.start(&r.wg, r.in, r.done)
	r.wg.Go(r.loop)
	r.stopWatch = watchMonitor(cfg.Monitor, r.names, r.kick, &r.wg)
	return r, nil
}

// relinkDelay batches the events of one change (an address removed, another
// added) into one re-announcement.
const relinkDelay = 100 * time.Millisecond

// watchMonitor watches m, if not nil, until the returned function is
// called, and signals kick (without blocking) on every event about an
// interface in names (all, if names is empty).
func watchMonitor(m *pathmon.Monitor, names []string, kick chan<- struct{}, wg *sync.WaitGroup) context.CancelFunc {
	if m == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() {
		_ = m.Watch(ctx, func(ev pathmon.Event) {
			if len(names) > 0 && !slices.Contains(names, ev.Interface) {
				return
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		})
	})
	return cancel
}

// randomHost returns "nn-<16 random hex digits>.local.": a host name that
// reveals nothing about the device and changes with every Responder.
func randomHost() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "nn-" + hex.EncodeToString(b[:]) + ".local."
}

// HostName returns the responder's default host name, used as the SRV
// target of services registered without a Host. It changes only if a
// conflict forces a rename.
func (r *Responder) HostName() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.host
}

// Stats returns the counts of received packets and of malformed packets and
// records.
func (r *Responder) Stats() Stats { return r.stats.snapshot() }

// Close sends goodbye packets (TTL 0) for every announced service, closes
// the socket and stops the responder's goroutines. Registrations become
// closed. Close is idempotent; later calls return nil.
func (r *Responder) Close() error {
	var err error
	r.closeOnce.Do(func() {
		_ = r.do(func() {
			for _, g := range slices.Clone(r.regs) {
				r.removeReg(g, true)
			}
		})
		close(r.done)
		r.stopWatch()
		err = r.conn.close()
		r.wg.Wait()
	})
	return err
}

// do runs f on the loop goroutine and waits for it.
func (r *Responder) do(f func()) error {
	ran := make(chan struct{})
	select {
	case r.cmds <- func() { f(); close(ran) }:
		<-ran
		return nil
	case <-r.done:
		return ErrClosed
	}
}

func (r *Responder) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		r.runDue(now)
		timer.Reset(time.Until(r.nextDeadline(now)))
		select {
		case <-r.done:
			return
		case f := <-r.cmds:
			f()
		case in := <-r.in:
			r.handle(in)
		case <-r.kick:
			if r.relinkAt.IsZero() {
				r.relinkAt = time.Now().Add(relinkDelay)
			}
		case <-timer.C:
		}
	}
}

func (r *Responder) nextDeadline(now time.Time) time.Time {
	next := now.Add(time.Hour)
	if r.nextPrune.Before(next) && !r.nextPrune.IsZero() {
		next = r.nextPrune
	}
	if !r.relinkAt.IsZero() && r.relinkAt.Before(next) {
		next = r.relinkAt
	}
	for _, g := range r.regs {
		if (g.state == stateProbing || g.state == stateAnnouncing) && g.next.Before(next) {
			next = g.next
		}
	}
	for _, p := range r.pending {
		if p.at.Before(next) {
			next = p.at
		}
	}
	return next
}

func (r *Responder) runDue(now time.Time) {
	if !r.relinkAt.IsZero() && !r.relinkAt.After(now) {
		r.relinkAt = time.Time{}
		if r.relink(now) {
			r.reannounce(now)
		}
	}
	for _, g := range slices.Clone(r.regs) {
		if !g.next.After(now) {
			switch g.state {
			case stateProbing:
				r.probeStep(g, now)
			case stateAnnouncing:
				r.announceStep(g, now)
			}
		}
	}
	for idx, p := range r.pending {
		if !p.at.After(now) {
			delete(r.pending, idx)
			r.flushPending(r.linkByIndex(idx), p, now)
		}
	}
	if !r.nextPrune.IsZero() && !r.nextPrune.After(now) {
		for k, t := range r.sent {
			if now.Sub(t) > sentMemory {
				delete(r.sent, k)
			}
		}
		for k, t := range r.history {
			if now.Sub(t) > time.Duration(ttlOther)*time.Second {
				delete(r.history, k)
			}
		}
		r.nextPrune = time.Time{}
	}
	if r.nextPrune.IsZero() && (len(r.sent) > 0 || len(r.history) > 0) {
		r.nextPrune = now.Add(sentMemory)
	}
}

func (r *Responder) linkByIndex(idx int) *link {
	for _, l := range r.links {
		if l.ifi.Index == idx {
			return l
		}
	}
	return nil
}

// ---- sending ----

func (r *Responder) sendMulticast(l *link, answers, authority, extra []dns.RR, query bool, qs []dns.Question, now time.Time) {
	h := dns.MsgHdr{Response: !query, Authoritative: !query}
	pkts, err := packSplit(h, qs, answers, authority, extra, l.limit, query)
	if err != nil {
		r.log.Warn("mdns: cannot pack message", "err", err)
		return
	}
	for _, b := range pkts {
		if err := r.conn.sendMulticast(l, b); err != nil {
			r.log.Debug("mdns: multicast send failed", "iface", l.name(), "err", err)
		}
	}
	for _, set := range [][]dns.RR{answers, authority, extra} {
		for _, rr := range set {
			k := keyOf(rr)
			r.sent[k] = now
			if !query {
				r.history[histKey{l.ifi.Index, k}] = now
			}
		}
	}
}

func (r *Responder) sendUnicast(l *link, dst netip.AddrPort, h dns.MsgHdr, qs []dns.Question, answers, extra []dns.RR, now time.Time) {
	pkts, err := packSplit(h, qs, answers, nil, extra, l.limit, false)
	if err != nil {
		r.log.Warn("mdns: cannot pack message", "err", err)
		return
	}
	for _, b := range pkts {
		if err := r.conn.sendUnicast(b, dst); err != nil {
			r.log.Debug("mdns: unicast send failed", "to", dst, "err", err)
		}
	}
	for _, rr := range append(slices.Clone(answers), extra...) {
		r.sent[keyOf(rr)] = now
	}
}

// ---- answering ----

func (r *Responder) handle(in inbound) {
	if r.linkByIndex(in.link.ifi.Index) == nil {
		return // read just before its interface was dropped
	}
	if in.p.opcode != 0 || in.p.rcode != 0 {
		return // RFC 6762 §18.3, §18.11
	}
	if in.p.response {
		r.handleResponse(in)
	} else {
		r.handleQuery(in)
	}
}

func (r *Responder) handleQuery(in inbound) {
	p := in.p
	now := in.at
	legacy := in.src.Port() != mdnsPort
	auth := p.section(secAuthority)
	probe := len(auth) > 0
	if probe {
		r.tieBreak(in, auth, now)
	}
	known := map[rrKey]uint32{}
	for _, rec := range p.section(secAnswer) {
		known[keyOf(rec.rr)] = rec.rr.Header().Ttl
	}
	if len(known) > 0 {
		r.suppressPending(in.link.ifi.Index, in.src.Addr(), known)
	}
	if len(p.questions) == 0 {
		return
	}
	var mc, uc []cand
	seen := map[rrKey]bool{}
	local := r.isLocal(in.src.Addr())
	for _, q := range p.questions {
		for _, c := range r.match(q, in.link) {
			k := keyOf(c.rr)
			if seen[k] {
				continue
			}
			seen[k] = true
			if ttl, ok := known[k]; ok && ttl >= c.rr.Header().Ttl/2 {
				continue // known-answer suppression, RFC 6762 §7.1
			}
			if legacy {
				uc = append(uc, c)
				continue
			}
			last, sentBefore := r.history[histKey{in.link.ifi.Index, k}]
			unicast := in.unicastDst
			if q.unicast && !local && sentBefore && now.Sub(last) < time.Duration(c.rr.Header().Ttl)*time.Second/4 {
				// QU: reply by unicast unless the record has not been
				// multicast recently (RFC 6762 §5.4). A querier on this
				// host always gets multicast: several sockets share
				// port 5353 here and a unicast reply reaches only one.
				unicast = true
			}
			if unicast {
				uc = append(uc, c)
				continue
			}
			gap := rateLimit
			if probe {
				gap = probeRateLimit
			}
			if sentBefore && now.Sub(last) < gap {
				continue // RFC 6762 §6 rate limit
			}
			mc = append(mc, c)
		}
	}
	if len(uc) > 0 {
		r.replyUnicast(in, uc, legacy, now)
	}
	if len(mc) > 0 {
		r.schedule(in, mc, now)
	}
}

// schedule queues multicast answers on the query's interface. Answers made
// only of unique records go out at once (RFC 6762 §6). Shared records (PTR)
// wait a random 0-20 ms when the query has a single question: a deviation
// from the RFC's 20-120 ms, which only matters when several responders
// answer the same shared question at once, in exchange for fast browsing.
// Queries with several questions wait 20-120 ms, truncated ones (more known
// answers to come) 400-500 ms, as the RFC says.
func (r *Responder) schedule(in inbound, cs []cand, now time.Time) {
	shared := false
	for _, c := range cs {
		if !c.unique {
			shared = true
		}
	}
	var delay time.Duration
	switch {
	case in.p.truncated:
		delay = 400*time.Millisecond + mrand.N(100*time.Millisecond)
	case !shared:
		delay = 0
	case len(in.p.questions) == 1:
		delay = mrand.N(20 * time.Millisecond)
	default:
		delay = 20*time.Millisecond + mrand.N(100*time.Millisecond)
	}
	idx := in.link.ifi.Index
	p := r.pending[idx]
	if p == nil {
		p = &pendingResp{at: now.Add(delay), rrs: map[rrKey]*pendingRR{}}
		r.pending[idx] = p
	} else if at := now.Add(delay); at.Before(p.at) {
		p.at = at
	}
	for _, c := range cs {
		k := keyOf(c.rr)
		pr := p.rrs[k]
		if pr == nil {
			pr = &pendingRR{c: c, srcs: map[netip.Addr]bool{}}
			p.rrs[k] = pr
			p.order = append(p.order, k)
		}
		pr.srcs[in.src.Addr()] = true
	}
}

// suppressPending drops pending answers that the querier at src lists as
// known answers in a follow-up packet (RFC 6762 §7.2).
func (r *Responder) suppressPending(idx int, src netip.Addr, known map[rrKey]uint32) {
	p := r.pending[idx]
	if p == nil {
		return
	}
	for k, ttl := range known {
		pr := p.rrs[k]
		if pr == nil || ttl < pr.c.rr.Header().Ttl/2 {
			continue
		}
		delete(pr.srcs, src)
		if len(pr.srcs) == 0 {
			delete(p.rrs, k)
		}
	}
}

func (r *Responder) flushPending(l *link, p *pendingResp, now time.Time) {
	if l == nil {
		return
	}
	var cs []cand
	for _, k := range p.order {
		if pr := p.rrs[k]; pr != nil {
			cs = append(cs, pr.c)
		}
	}
	if len(cs) == 0 {
		return
	}
	ans, extra := flatten(cs, false)
	r.sendMulticast(l, ans, nil, extra, false, nil, now)
}

// flatten turns candidates into answer and additional records with TTLs and
// cache-flush bits applied. Legacy unicast caps TTLs at 10 s and never sets
// the cache-flush bit (RFC 6762 §6.7).
func flatten(cs []cand, legacy bool) (answers, extra []dns.RR) {
	seen := map[rrKey]bool{}
	conv := func(c cand) dns.RR {
		ttl := c.rr.Header().Ttl
		if legacy && ttl > ttlLegacy {
			ttl = ttlLegacy
		}
		return withTTL(c.rr, ttl, c.unique && !legacy)
	}
	for _, c := range cs {
		k := keyOf(c.rr)
		if !seen[k] {
			seen[k] = true
			answers = append(answers, conv(c))
		}
	}
	for _, c := range cs {
		for _, e := range c.extra {
			k := keyOf(e.rr)
			if !seen[k] {
				seen[k] = true
				extra = append(extra, conv(e))
			}
		}
	}
	return answers, extra
}

func (r *Responder) replyUnicast(in inbound, cs []cand, legacy bool, now time.Time) {
	ans, extra := flatten(cs, legacy)
	h := dns.MsgHdr{Response: true, Authoritative: true}
	var qs []dns.Question
	if legacy {
		h.Id = in.p.id
		for _, q := range in.p.questions {
			qs = append(qs, dns.Question{Name: q.name, Qtype: q.qtype, Qclass: q.class})
		}
	}
	r.sendUnicast(in.link, in.src, h, qs, ans, extra, now)
}

// isLocal reports whether a is an address of this host on one of our links.
func (r *Responder) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	a = a.WithZone("")
	for _, l := range r.links {
		for _, p := range l.addrs() {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

// match returns the records answering q on link l, from registrations that
// finished probing.
func (r *Responder) match(q question, l *link) []cand {
	if q.class != dns.ClassINET && q.class != dns.ClassANY {
		return nil
	}
	qn := strings.ToLower(q.name)
	anyType := q.qtype == dns.TypeANY
	var out []cand
	for _, g := range r.regs {
		if g.state != stateAnnouncing && g.state != stateEstablished {
			continue
		}
		rs := g.records(l)
		switch qn {
		case strings.ToLower(g.svcFQDN):
			if anyType || q.qtype == dns.TypePTR {
				out = append(out, rs.ptrCand())
			}
		case servicesEnum:
			if anyType || q.qtype == dns.TypePTR {
				out = append(out, cand{rr: rs.enum})
			}
		case strings.ToLower(g.instFQDN):
			if anyType || q.qtype == dns.TypeSRV {
				out = append(out, rs.srvCand())
			}
			if anyType || q.qtype == dns.TypeTXT {
				out = append(out, cand{rr: rs.txt, unique: true})
			}
			if !anyType && q.qtype != dns.TypeSRV && q.qtype != dns.TypeTXT {
				out = append(out, cand{rr: rs.nsecInst, unique: true})
			}
		}
		if qn == strings.ToLower(g.hostFQDN) {
			// An A question gets the AAAA records as additional records
			// and the reverse (RFC 6762 §6.2), and NSEC says which of the
			// two the host has.
			matched := false
			for _, a := range rs.a {
				if anyType || q.qtype == a.Header().Rrtype {
					matched = true
					extra := []cand{}
					for _, o := range rs.a {
						if o.Header().Rrtype != a.Header().Rrtype {
							extra = append(extra, cand{rr: o, unique: true})
						}
					}
					out = append(out, cand{rr: a, unique: true, extra: append(extra, cand{rr: rs.nsecHost, unique: true})})
				}
			}
			if !matched {
				out = append(out, cand{rr: rs.nsecHost, unique: true})
			}
		}
	}
	return out
}

// ---- responses from others: conflicts and duplicate suppression ----

func (r *Responder) handleResponse(in inbound) {
	now := in.at
	if p := r.pending[in.link.ifi.Index]; p != nil {
		// Duplicate answer suppression (RFC 6762 §7.4).
		for _, rec := range in.p.records {
			if rec.sec != secAnswer {
				continue
			}
			k := keyOf(rec.rr)
			if pr := p.rrs[k]; pr != nil && rec.rr.Header().Ttl >= pr.c.rr.Header().Ttl/2 {
				delete(p.rrs, k)
			}
		}
	}
	for _, g := range slices.Clone(r.regs) {
		if g.state == stateClosed {
			continue
		}
		inst, host := r.conflicts(g, in)
		if !inst && !host {
			continue
		}
		r.log.Debug("mdns: name conflict", "instance", g.instFQDN, "host", g.hostFQDN, "instConflict", inst, "hostConflict", host, "from", in.src, "state", g.state)
		if g.state == stateProbing {
			r.rename(g, inst, host, now)
		} else {
			// RFC 6762 §9: an established record in conflict goes back to
			// probing; if the other side still claims it, we rename.
			g.state = stateProbing
			g.probes = 0
			g.probeHost = host
			g.next = now.Add(mrand.N(probeInterval))
		}
	}
}

// conflicts reports whether the response in claims g's instance name or
// (while it is being probed, or for established records) its host name with
// data different from ours.
func (r *Responder) conflicts(g *Registration, in inbound) (inst, host bool) {
	li, lh := strings.ToLower(g.instFQDN), strings.ToLower(g.hostFQDN)
	checkHost := g.probeHost || g.state != stateProbing
	var rs *regRecords
	for _, rec := range in.p.records {
		n := strings.ToLower(rec.rr.Header().Name)
		isInst, isHost := n == li, checkHost && n == lh
		if !isInst && !isHost {
			continue
		}
		k := keyOf(rec.rr)
		if _, ours := r.sent[k]; ours {
			continue // our own packet, looped back
		}
		if rs == nil {
			x := g.records(in.link)
			rs = &x
		}
		if rs.has(k) {
			continue // identical data is not a conflict
		}
		if t := rec.rr.Header().Rrtype; isHost && (t == dns.TypeA || t == dns.TypeAAAA) && g.state != stateProbing {
			// Another address of the host name is only a conflict if it is
			// asserted as unique (cache-flush) for this link.
			if !rec.flush {
				continue
			}
		}
		if isInst {
			inst = true
		} else {
			host = true
		}
	}
	return inst, host
}

// tieBreak handles probes from others for names we are probing
// (RFC 6762 §8.2): the lexicographically later record set wins; the loser
// waits a second and probes again.
func (r *Responder) tieBreak(in inbound, auth []record, now time.Time) {
	for _, g := range r.regs {
		if g.state != stateProbing || g.probes == 0 {
			continue
		}
		rs := g.records(in.link)
		names := []struct {
			name string
			ours []dns.RR
		}{{g.instFQDN, []dns.RR{rs.srv, rs.txt}}}
		if g.probeHost {
			names = append(names, struct {
				name string
				ours []dns.RR
			}{g.hostFQDN, rs.a})
		}
		for _, nm := range names {
			var theirs []dns.RR
			for _, rec := range auth {
				if strings.EqualFold(rec.rr.Header().Name, nm.name) {
					theirs = append(theirs, rec.rr)
				}
			}
			if len(theirs) == 0 {
				continue
			}
			if compareSets(nm.ours, theirs) < 0 {
				r.log.Debug("mdns: lost simultaneous probe tie-break", "name", nm.name, "from", in.src)
				g.probes = 0
				g.next = now.Add(tieBreakDelay)
				return
			}
		}
	}
}

func compareSets(a, b []dns.RR) int {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, compareRData)
	slices.SortFunc(b, compareRData)
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareRData(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// ---- registration lifecycle on the loop ----

func (r *Responder) addReg(g *Registration, now time.Time) {
	r.regs = append(r.regs, g)
	r.dedupeLocal(g)
	g.state = stateProbing
	g.probeHost = !r.verified[strings.ToLower(g.hostFQDN)]
	g.next = now.Add(mrand.N(probeInterval)) // RFC 6762 §8.1: 0-250 ms
}

// dedupeLocal renames g until no other registration here uses its name.
func (r *Responder) dedupeLocal(g *Registration) {
	for {
		clash := false
		for _, o := range r.regs {
			if o != g && o.state != stateClosed && strings.EqualFold(o.instFQDN, g.instFQDN) {
				clash = true
			}
		}
		if !clash {
			return
		}
		g.instTry++
		g.setNames()
	}
}

func (r *Responder) rename(g *Registration, inst, host bool, now time.Time) {
	if inst {
		g.instTry++
	}
	if host {
		g.hostTry++
		g.probeHost = true
	}
	g.setNames()
	r.dedupeLocal(g)
	if host && g.defaultHost {
		r.mu.Lock()
		r.host = g.hostFQDN
		r.mu.Unlock()
	}
	if g.instTry+g.hostTry > maxRenames {
		r.log.Warn("mdns: giving up after too many name conflicts", "instance", g.baseInst)
		g.signal(ErrConflict)
		r.removeReg(g, false)
		return
	}
	g.renames = append(g.renames, now)
	for len(g.renames) > 0 && now.Sub(g.renames[0]) > 10*time.Second {
		g.renames = g.renames[1:]
	}
	g.state = stateProbing
	g.probes = 0
	g.next = now.Add(mrand.N(probeInterval))
	if len(g.renames) >= 15 {
		g.next = now.Add(5 * time.Second) // RFC 6762 §8.1
	}
}

func (r *Responder) probeStep(g *Registration, now time.Time) {
	if g.probes >= probeCount {
		// Probing done without conflict.
		if g.probeHost {
			r.verified[strings.ToLower(g.hostFQDN)] = true
			g.probeHost = false
		}
		g.state = stateAnnouncing
		g.announces = 0
		r.announceStep(g, now)
		return
	}
	for _, l := range r.links {
		rs := g.records(l)
		qs := []dns.Question{{Name: g.instFQDN, Qtype: dns.TypeANY, Qclass: dns.ClassINET}}
		auth := []dns.RR{rs.srv, rs.txt}
		if g.probeHost {
			qs = append(qs, dns.Question{Name: g.hostFQDN, Qtype: dns.TypeANY, Qclass: dns.ClassINET})
			auth = append(auth, rs.a...)
		}
		// Probes are sent as QM, not QU (a deviation from the RFC's
		// SHOULD): a unicast reply to port 5353 reaches only one of the
		// sockets sharing the port on our host, and might miss us.
		r.sendMulticast(l, nil, auth, nil, true, qs, now)
	}
	g.probes++
	g.next = now.Add(probeInterval)
}

func (r *Responder) announceStep(g *Registration, now time.Time) {
	for _, l := range r.links {
		rs := g.records(l)
		cs := []cand{rs.ptrCand(), {rr: rs.enum}, rs.srvCand(), {rr: rs.txt, unique: true}}
		for _, a := range rs.a {
			cs = append(cs, cand{rr: a, unique: true})
		}
		ans, _ := flatten(cs, false)
		extra := []dns.RR{withTTL(rs.nsecInst, rs.nsecInst.Header().Ttl, true), withTTL(rs.nsecHost, rs.nsecHost.Header().Ttl, true)}
		r.sendMulticast(l, ans, nil, extra, false, nil, now)
		var as []netip.Addr
		for _, a := range rs.a {
			addr, _ := rrAddr(a)
			as = append(as, addr)
		}
		r.announced[l.ifi.Index] = as
	}
	g.announces++
	g.publish()
	g.signal(nil)
	if g.announces >= announceCount {
		g.state = stateEstablished
		g.next = time.Time{}
		return
	}
	g.next = now.Add(announceInterval << (g.announces - 1))
}

// removeReg drops g, sending goodbyes (RFC 6762 §10.1) if it was announced.
func (r *Responder) removeReg(g *Registration, goodbye bool) {
	i := slices.Index(r.regs, g)
	if i < 0 {
		return
	}
	r.regs = slices.Delete(r.regs, i, i+1)
	announced := g.state == stateAnnouncing || g.state == stateEstablished
	g.state = stateClosed
	g.signal(ErrClosed)
	if !goodbye || !announced {
		return
	}
	typeInUse, hostInUse := false, false
	for _, o := range r.regs {
		if o.state == stateAnnouncing || o.state == stateEstablished {
			typeInUse = typeInUse || strings.EqualFold(o.svcFQDN, g.svcFQDN)
			hostInUse = hostInUse || strings.EqualFold(o.hostFQDN, g.hostFQDN)
		}
	}
	now := time.Now()
	for _, l := range r.links {
		rs := g.records(l)
		cs := []cand{{rr: rs.ptr}, {rr: rs.srv, unique: true}, {rr: rs.txt, unique: true}}
		if !typeInUse {
			cs = append(cs, cand{rr: rs.enum})
		}
		if !hostInUse {
			for _, a := range rs.a {
				cs = append(cs, cand{rr: a, unique: true})
			}
		}
		var ans []dns.RR
		for _, c := range cs {
			ans = append(ans, withTTL(c.rr, 0, c.unique))
		}
		r.sendMulticast(l, ans, nil, nil, false, nil, now)
	}
}

// ---- Registration ----

type regState int

const (
	stateProbing regState = iota
	stateAnnouncing
	stateEstablished
	stateClosed
)

// Registration is one service registered with a [Responder]. Its methods are
// safe for concurrent use. It lives until [Registration.Close] or
// [Responder.Close].
//
// If another responder later claims the registered name with different
// data (RFC 6762 §9), the registration probes again and, if the claim
// stands, is renamed; [Registration.Service] always reports the current
// name.
type Registration struct {
	r *Responder

	mu  sync.Mutex // guards svc
	svc Service    // as announced, with final names

	ready     chan error // receives the outcome of probing, once
	readySent bool       // loop-owned

	// Loop-owned state.
	typ, domain        string
	baseInst, baseHost string
	instTry, hostTry   int // 1 for the original name, 2 for "name (2)", ...
	defaultHost        bool
	port               int
	txt                []string
	txtMap             map[string]string
	instFQDN, svcFQDN  string
	hostFQDN           string
	state              regState
	probeHost          bool
	probes, announces  int
	next               time.Time
	renames            []time.Time
}

func (g *Registration) setNames() {
	inst := g.baseInst
	if g.instTry > 1 {
		inst = renameInstance(g.baseInst, g.instTry)
	}
	host := g.baseHost
	if g.hostTry > 1 {
		host = renameHost(g.baseHost, g.hostTry)
	}
	g.svcFQDN = serviceName(g.typ, g.domain)
	g.instFQDN = instanceName(inst, g.typ, g.domain)
	g.hostFQDN = host
	g.mu.Lock()
	g.svc.Instance = inst
	g.svc.Host = host
	g.mu.Unlock()
}

// publish updates the snapshot returned by Service with the TXT in use.
func (g *Registration) publish() {
	g.mu.Lock()
	g.svc.TXT = g.txtMap
	g.mu.Unlock()
}

func (g *Registration) signal(err error) {
	if g.readySent {
		return
	}
	g.readySent = true
	g.ready <- err
}

// regRecords are a registration's records as seen on one interface.
type regRecords struct {
	ptr, enum, srv, txt dns.RR
	a                   []dns.RR // A and AAAA: every address of the interface
	nsecInst, nsecHost  dns.RR
}

func (g *Registration) records(l *link) regRecords {
	rs := regRecords{
		ptr:      newPTR(g.svcFQDN, g.instFQDN, ttlOther),
		enum:     newPTR(servicesEnum, g.svcFQDN, ttlOther),
		srv:      newSRV(g.instFQDN, g.hostFQDN, g.port, ttlHost),
		txt:      newTXT(g.instFQDN, g.txt, ttlOther),
		nsecInst: newNSEC(g.instFQDN, ttlOther, dns.TypeTXT, dns.TypeSRV),
	}
	var types []uint16
	for _, p := range l.addrs() {
		rr := newAddr(g.hostFQDN, p.Addr(), ttlHost)
		rs.a = append(rs.a, rr)
		if t := rr.Header().Rrtype; !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	// NSEC asserts the host has no other types; with no address at all it
	// still has the record, listing none.
	rs.nsecHost = newNSEC(g.hostFQDN, ttlHost, types...)
	return rs
}

func (rs regRecords) has(k rrKey) bool {
	for _, rr := range append([]dns.RR{rs.ptr, rs.enum, rs.srv, rs.txt, rs.nsecInst, rs.nsecHost}, rs.a...) {
		if keyOf(rr) == k {
			return true
		}
	}
	return false
}

// ptrCand is the PTR answer with SRV, TXT and addresses as additional
// records (RFC 6763 §12.1).
func (rs regRecords) ptrCand() cand {
	extra := []cand{{rr: rs.srv, unique: true}, {rr: rs.txt, unique: true}}
	for _, a := range rs.a {
		extra = append(extra, cand{rr: a, unique: true})
	}
	extra = append(extra, cand{rr: rs.nsecHost, unique: true})
	return cand{rr: rs.ptr, extra: extra}
}

func (rs regRecords) srvCand() cand {
	var extra []cand
	for _, a := range rs.a {
		extra = append(extra, cand{rr: a, unique: true})
	}
	extra = append(extra, cand{rr: rs.nsecHost, unique: true})
	return cand{rr: rs.srv, unique: true, extra: extra}
}

// Register validates s, probes for its instance name (and host name) on
// every interface, renaming on conflict ("Name (2)", host "box-2.local."),
// announces it, and returns once the first announcement is sent (about a
// second). s.Addrs and s.Interface are ignored: on each interface the
// service is announced with that interface's IPv4 addresses (A records) and
// IPv6 addresses, link-local ones included (AAAA records), over both
// families. The final names are in
// [Registration.Service].
//
// Cancelling ctx before Register returns abandons the registration;
// afterwards ctx has no effect: the service stays registered until
// [Registration.Close] or [Responder.Close].
func (r *Responder) Register(ctx context.Context, s Service) (*Registration, error) {
	if err := ValidateInstance(s.Instance); err != nil {
		return nil, err
	}
	if err := ValidateServiceType(s.Type); err != nil {
		return nil, err
	}
	domain, err := normalizeDomain(s.Domain)
	if err != nil {
		return nil, err
	}
	if s.Port < 1 || s.Port > 65535 {
		return nil, &FieldError{Field: "Service.Port", Value: strconv.Itoa(s.Port), Reason: "must be 1-65535"}
	}
	txt, err := EncodeTXT(s.TXT)
	if err != nil {
		return nil, err
	}
	host, defaultHost := s.Host, s.Host == ""
	if defaultHost {
		host = r.HostName()
	} else if host, err = normalizeHost(host); err != nil {
		return nil, err
	}
	g := &Registration{
		r:           r,
		ready:       make(chan error, 1),
		typ:         s.Type,
		domain:      domain,
		baseInst:    s.Instance,
		baseHost:    host,
		instTry:     1,
		hostTry:     1,
		defaultHost: defaultHost,
		port:        s.Port,
		txt:         txt,
		txtMap:      DecodeTXT(txt),
	}
	g.svc = Service{Type: s.Type, Domain: domain, Port: s.Port, TXT: g.txtMap}
	g.setNames()
	if err := r.do(func() { r.addReg(g, time.Now()) }); err != nil {
		return nil, err
	}
	select {
	case err := <-g.ready:
		if err != nil {
			return nil, err
		}
		return g, nil
	case <-ctx.Done():
		_ = r.do(func() { r.removeReg(g, true) })
		return nil, ctx.Err()
	case <-r.done:
		return nil, ErrClosed
	}
}

// Reannounce brings the responder up to date with the network and
// announces every registered service again (twice, a second apart) with
// the interfaces' current addresses. It first applies Config.Interfaces to
// the interfaces there are now: it joins those that appeared (or came up)
// and drops those that went away (or down), which is never an error, and
// sends goodbye records (TTL 0, RFC 6762 §10.1) for addresses that were
// announced and are gone from an interface still there. The cache-flush
// bit on the announced address records (RFC 6762 §10.2) makes browsers drop
// any other old ones within a second.
//
// Call it when interfaces or addresses change (RFC 6762 §8.3, §13): the
// root package does from its path monitor; with Config.Monitor set, the
// responder does it by itself. It returns [ErrClosed] after Close.
func (r *Responder) Reannounce() error {
	return r.do(func() {
		now := time.Now()
		r.relink(now)
		r.reannounce(now)
	})
}

func (r *Responder) reannounce(now time.Time) {
	for _, g := range r.regs {
		if g.state == stateAnnouncing || g.state == stateEstablished {
			g.state = stateAnnouncing
			g.announces = 0
			r.announceStep(g, now)
		}
	}
}

// relink applies Config.Interfaces to the interfaces there are now, sends
// goodbyes for announced addresses that are gone, and reports whether
// anything changed that calls for announcing again.
func (r *Responder) relink(now time.Time) bool {
	next := reselectLinks(r.nw, r.names, r.links)
	byIdx := map[int]*link{}
	for _, l := range next {
		byIdx[l.ifi.Index] = l
	}
	var hosts []string
	for _, g := range r.regs {
		if (g.state == stateAnnouncing || g.state == stateEstablished) && !slices.Contains(hosts, g.hostFQDN) {
			hosts = append(hosts, g.hostFQDN)
		}
	}
	changed := false
	for _, l := range r.links {
		idx := l.ifi.Index
		target := byIdx[idx]
		if target == nil {
			// Dropped, but its interface may still be there (down, or it
			// lost its last IPv4 address): goodbyes still reach its link.
			target = l
			l.invalidate()
		}
		var cur []netip.Addr
		for _, p := range target.addrs() {
			cur = append(cur, p.Addr())
		}
		var goodbyes []dns.RR
		for _, a := range r.announced[idx] {
			if !slices.Contains(cur, a) {
				for _, h := range hosts {
					goodbyes = append(goodbyes, withTTL(newAddr(h, a, ttlHost), 0, false))
				}
			}
		}
		if len(goodbyes) > 0 {
			changed = true
			r.announced[idx] = cur
			if ifi, err := interfaceByIndex(r.nw, idx); err == nil && ifi.Flags&net.FlagUp != 0 {
				r.log.Debug("mdns: goodbye for addresses gone", "iface", l.name(), "records", len(goodbyes))
				r.sendMulticast(target, goodbyes, nil, nil, false, nil, now)
			}
		}
		if byIdx[idx] == nil {
			r.log.Debug("mdns: dropping interface", "iface", l.name())
			delete(r.announced, idx)
			delete(r.pending, idx)
			changed = true
		}
	}
	for _, l := range next {
		if r.linkByIndex(l.ifi.Index) == nil {
			r.log.Debug("mdns: joining interface", "iface", l.name())
			changed = true
			continue
		}
		for _, p := range l.addrs() {
			if !slices.Contains(r.announced[l.ifi.Index], p.Addr()) {
				changed = true
			}
		}
	}
	r.conn.setLinks(next)
	r.links = next
	return changed
}

// Service returns the registered service with its current names (after any
// conflict rename) and TXT.
func (g *Registration) Service() Service {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.svc.clone()
}

// SetTXT replaces the service's TXT attributes and re-announces the service
// (twice, a second apart) so browsers see the change. It returns once the
// first announcement is sent, or [ErrClosed].
func (g *Registration) SetTXT(txt map[string]string) error {
	enc, err := EncodeTXT(txt)
	if err != nil {
		return err
	}
	closed := false
	err = g.r.do(func() {
		if g.state == stateClosed {
			closed = true
			return
		}
		g.txt = enc
		g.txtMap = DecodeTXT(enc)
		if g.state == stateAnnouncing || g.state == stateEstablished {
			g.state = stateAnnouncing
			g.announces = 0
			g.r.announceStep(g, time.Now())
		}
	})
	if err == nil && closed {
		err = ErrClosed
	}
	return err
}

// Close withdraws the service with goodbye packets (TTL 0). It is
// idempotent; after [Responder.Close] it does nothing and returns nil.
func (g *Registration) Close() error {
	err := g.r.do(func() { g.r.removeReg(g, true) })
	if err == ErrClosed {
		return nil
	}
	return err
}
