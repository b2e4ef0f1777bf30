package icepath

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/wire"
)

// First contact between peers that never shared a LAN (PROTOCOL.md
// section 18, "First contact"). A node that registers in a wide-area
// domain and has a TURN server keeps a mailbox, a TURN allocation whose
// relayed address it publishes in its record (TXT key "mbx"), with the
// permission for its server's relay address installed, so that a peer's
// allocation on the same server may knock. A dialer that resolves such a
// record opens an allocation of its own, knocks with an ICE offer, and the
// listener answers with a knock carrying its answer from a fresh agent;
// both run ICE's checks, and the dialer dials QUIC over the pair
// nominated (direct whenever a check between the NAT mappings succeeds),
// which the listener accepts as its listener does.

// TXTMailbox is the TXT key of a node's mailbox in its wide-area record:
// "ip:port", a relayed address on its TURN server.
const TXTMailbox = "mbx"

// Bounds on the offers a mailbox takes from knocks (unauthenticated: a
// forged one costs an ICE agent and its TURN allocation for offerTime at
// most, then a failed handshake).
const (
	maxOffers   = 8                // offers in progress at once; more are ignored
	offerRate   = 4                // new offers a second, in the long run
	offerBurst  = 8                // new offers at once after a quiet time
	offerTime   = 20 * time.Second // an offer's agent has this long to see a session start over its path
	knockEvery  = 500 * time.Millisecond
	permitEvery = 2 * time.Minute // before a TURN permission's 5 minutes end
	gatherTime  = 5 * time.Second
)

// firstState is a node's first-contact state: its published mailbox, the
// offers it is answering, and the paths of first contact no session took
// yet.
type firstState struct {
	mu          sync.Mutex
	mbox        *ice.Mailbox
	addr        string                         // mbox's address, as published
	opened      int                            // mailboxes opened, for tests
	set         func(key, value string) error  // puts a new mailbox in the record (Republish)
	permitEvery time.Duration                  // how often the mailbox's permission is renewed (permitEvery)
	offers      map[netip.AddrPort]*offerState // by the knocking allocation
	running     int                            // offers being answered (at most maxOffers)
	paths       map[*ice.Path]*firstPath
	tokens      float64
	refill      time.Time
	dropped     int // offers ignored by the bounds, for tests and logs
}

type offerState struct {
	ufrag  string
	answer []byte // the answer's knock body, once gathered
}

// firstPath is an ICE path made by first contact, until a session takes
// it (Attached): then the session's exchange owns path and listener.
type firstPath struct {
	path    *ice.Path
	ln      transport.Listener // the listener's side: QUIC over the path
	claimed chan struct{}
}

func (f *firstState) init() {
	f.offers = map[netip.AddrPort]*offerState{}
	f.paths = map[*ice.Path]*firstPath{}
	f.tokens, f.refill = offerBurst, time.Now()
	f.permitEvery = permitEvery
}

// Publish opens the node's mailbox and returns txt with its address
// (TXTMailbox) for the wide-area record; txt itself when there is no
// mailbox (no TURN server over UDP, or it did not answer: logged).
func (ni *Node) Publish(ctx context.Context, txt map[string]string) map[string]string {
	if ni == nil {
		return txt
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := ice.OpenMailbox(ctx, ni.cfg)
	if err == nil {
		if err = m.Permit(m.RelayIP()); err != nil {
			m.Close()
		}
	}
	if err != nil {
		if !errors.Is(err, ice.ErrNoTURN) {
			ni.log.Warn("nearnet: ICE: no mailbox for first contact; peers beyond the LAN cannot reach this node", "err", err)
		}
		return txt
	}
	ni.first.mu.Lock()
	old := ni.first.mbox
	ni.first.mbox, ni.first.addr = m, m.Addr()
	ni.first.opened++
	ni.first.mu.Unlock()
	if old != nil {
		old.Close()
	}
	ni.c.Go(func() { ni.serve(m) })
	out := maps.Clone(txt)
	out[TXTMailbox] = m.Addr()
	return out
}

// Republish gives the node the way to put a new mailbox address in its
// wide-area record (the registration's SetTXT): a mailbox whose
// allocation ended (the TURN server restarted) is opened again, and the
// record follows.
func (ni *Node) Republish(set func(key, value string) error) {
	if ni == nil {
		return
	}
	ni.first.mu.Lock()
	ni.first.set = set
	ni.first.mu.Unlock()
}

// serve takes the knocks on the node's mailbox until the node closes,
// opening a new mailbox when the allocation of the one before ends.
func (ni *Node) serve(m *ice.Mailbox) {
	for m != nil && ni.serveMailbox(m) {
		m.Close()
		ni.log.Warn("nearnet: ICE: the mailbox's TURN allocation ended; opening another")
		m = ni.reopen()
	}
	if m != nil {
		m.Close()
	}
}

// serveMailbox serves m until the node closes (false) or m's allocation
// ends (true): its permission cannot be renewed, or m closed.
func (ni *Node) serveMailbox(m *ice.Mailbox) (lost bool) {
	permit := time.NewTicker(ni.first.permitEvery)
	defer permit.Stop()
	for {
		select {
		case <-ni.ctx.Done():
			return false
		case <-m.Done():
			return true
		case <-permit.C:
			if err := m.Permit(m.RelayIP()); err != nil {
				ni.log.Debug("nearnet: ICE: renewing the mailbox's permission", "err", err)
				return true
			}
		case k := <-m.Knocks():
			o, err := decodeKnock(k.Token, false)
			if err != nil {
				ni.log.Debug("nearnet: ICE: ignoring a knock", "from", k.From, "err", err)
				continue
			}
			ni.takeOffer(m, k.From, o)
		}
	}
}

// reopen opens a new mailbox (backing off from 1 s to 30 s between tries)
// and puts its address in the record; nil once the node closes.
func (ni *Node) reopen() *ice.Mailbox {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		ctx, cancel := context.WithTimeout(ni.ctx, 10*time.Second)
		m, err := ice.OpenMailbox(ctx, ni.cfg)
		cancel()
		if err == nil {
			if err = m.Permit(m.RelayIP()); err != nil {
				m.Close()
			}
		}
		if err == nil {
			ni.first.mu.Lock()
			ni.first.mbox, ni.first.addr = m, m.Addr()
			ni.first.opened++
			set := ni.first.set
			ni.first.mu.Unlock()
			if set != nil {
				if err := set(TXTMailbox, m.Addr()); err != nil {
					ni.log.Warn("nearnet: ICE: cannot publish the new mailbox", "err", err)
				}
			}
			return m
		}
		ni.log.Debug("nearnet: ICE: no new mailbox yet", "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ni.ctx.Done():
			t.Stop()
			return nil
		}
	}
}

// takeOffer answers an offer within the bounds (admit).
func (ni *Node) takeOffer(m *ice.Mailbox, from netip.AddrPort, o *wire.ICE) {
	f := &ni.first
	st, resend, ok := f.admit(from, o.Ufrag, time.Now())
	if resend != nil {
		m.Knock(from.String(), resend)
	}
	if !ok {
		if resend == nil {
			ni.log.Debug("nearnet: ICE: too many offers; ignoring a knock", "from", from)
		}
		return
	}
	ni.c.Go(func() {
		defer f.done(from, st)
		if err := ni.answer(m, from, o, st); err != nil {
			ni.log.Debug("nearnet: ICE: first contact failed", "from", from, "err", err)
		}
	})
}

// admit decides on an offer with ufrag from the allocation at from: a
// repeated offer gets the same answer again (resend, when it is ready:
// the knock carrying it may have been lost); a new one (a new attempt, or
// a new allocation that got the port of an old one) is taken (ok) within
// maxOffers at once and the token bucket (offerRate, offerBurst), else
// ignored. A taken offer ends with done.
func (f *firstState) admit(from netip.AddrPort, ufrag string, now time.Time) (st *offerState, resend []byte, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.offers[from]; st != nil && st.ufrag == ufrag {
		return nil, st.answer, false
	}
	f.tokens = min(offerBurst, f.tokens+now.Sub(f.refill).Seconds()*offerRate)
	f.refill = now
	if f.running >= maxOffers || f.tokens < 1 {
		f.dropped++
		return nil, nil, false
	}
	f.tokens--
	f.running++
	st = &offerState{ufrag: ufrag}
	f.offers[from] = st
	return st, nil, true
}

// done ends an offer admit took.
func (f *firstState) done(from netip.AddrPort, st *offerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	if f.offers[from] == st {
		delete(f.offers, from)
	}
}

// answer gathers, answers the offer o that came from the allocation at
// from, runs the checks and listens on the path found until a session
// starts over it or offerTime passes.
func (ni *Node) answer(m *ice.Mailbox, from netip.AddrPort, o *wire.ICE, st *offerState) error {
	ctx, cancel := context.WithTimeout(ni.ctx, offerTime)
	defer cancel()
	a, err := ice.NewAgent(ni.cfg)
	if err != nil {
		return err
	}
	gctx, gcancel := context.WithTimeout(ctx, gatherTime)
	d, err := a.Gather(gctx)
	gcancel()
	var body []byte
	if err == nil {
		body, err = encodeKnock(&wire.ICE{Gen: o.Gen, Answer: true, Ufrag: d.Ufrag, Pwd: d.Pwd, Candidates: d.Candidates})
	}
	if err != nil {
		a.Close()
		return err
	}
	ni.first.mu.Lock()
	st.answer = body
	ni.first.mu.Unlock()
	m.Knock(from.String(), body)
	p, err := a.Connect(ctx, false, ice.Description{Ufrag: o.Ufrag, Pwd: o.Pwd, Candidates: o.Candidates})
	if err != nil {
		a.Close()
		return err
	}
	fp := &firstPath{path: p, claimed: make(chan struct{})}
	// Under first.mu: a session may start over the path (claim) as soon
	// as the listener runs, and it takes the listener with the path.
	ni.first.mu.Lock()
	ni.first.paths[p] = fp
	fp.ln, err = ni.q.ListenOver(p.Lease(), acceptor{ni, p})
	ni.first.mu.Unlock()
	if err != nil {
		ni.unclaimed(fp)
		return err
	}
	ni.log.Debug("nearnet: ICE: first contact: path ready", "from", from, "path", fmt.Sprintf("%+v", p.Info()))
	ni.expire(ctx, fp)
	return nil
}

// expire closes fp unless a session takes it before ctx ends.
func (ni *Node) expire(ctx context.Context, fp *firstPath) {
	select {
	case <-fp.claimed:
	case <-ctx.Done():
		ni.unclaimed(fp)
	}
}

// unclaimed closes a path of first contact that no session took.
func (ni *Node) unclaimed(fp *firstPath) {
	ni.first.mu.Lock()
	mine := ni.first.paths[fp.path] == fp
	delete(ni.first.paths, fp.path)
	ni.first.mu.Unlock()
	if !mine {
		return // claimed meanwhile: the session owns it
	}
	ni.mu.Lock()
	for tc, p := range ni.paths {
		if p == infoer(fp.path) {
			delete(ni.paths, tc)
		}
	}
	ni.mu.Unlock()
	if fp.ln != nil {
		fp.ln.Close()
	}
	fp.path.Close()
}

// isFirst reports whether p is a path of first contact no session took.
func (ni *Node) isFirst(p infoer) bool {
	ip, ok := p.(*ice.Path)
	if !ok {
		return false
	}
	ni.first.mu.Lock()
	defer ni.first.mu.Unlock()
	return ni.first.paths[ip] != nil
}

// claim hands the path of first contact p to ic, the session that
// started or resumed over it (its link dialed to dialed, "" on the
// listener's side), closing the path ic had; false if p is not one (or
// was taken already).
func (ni *Node) claim(ic *iceConn, p infoer, dialed string) bool {
	ip, ok := p.(*ice.Path)
	if !ok {
		return false
	}
	ni.first.mu.Lock()
	fp := ni.first.paths[ip]
	delete(ni.first.paths, ip)
	var ln transport.Listener
	if fp != nil {
		ln = fp.ln
	}
	ni.first.mu.Unlock()
	if fp == nil {
		return false
	}
	ic.mu.Lock()
	oldP, oldLn := ic.path, ic.ln
	ic.path, ic.ln, ic.beyond = fp.path, ln, true
	if mbx, ok := strings.CutPrefix(dialed, mailboxPrefix); ok {
		ic.firstMbx = mbx
	}
	ic.mu.Unlock()
	close(fp.claimed)
	if oldP != fp.path {
		ni.closePath(oldP, oldLn) // the path of the session's link before this resume
	}
	return true
}

// Via returns the attempt of first contact for a peer whose wide-area
// record has txt: its mailbox, when this node has a TURN server.
func (ni *Node) Via(txt map[string]string) []transport.Attempt {
	if ni == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(txt[TXTMailbox])
	if err != nil || ap.Port() == 0 {
		return nil
	}
	return []transport.Attempt{{Addr: mailboxPrefix + ap.String(), T: firstTransport{ni: ni}}}
}

// mailboxPrefix starts the address of a first-contact attempt (and so
// the Dialed of its link): "mbx:" and the peer's mailbox. The LAN
// transports cannot dial it (a parse error, not a refusal), so a redial
// of the session does not take the TURN server's relay port, which no
// TCP listener holds, for a peer that no longer listens.
const mailboxPrefix = "mbx:"

// firstTransport dials a peer through first contact, for Dials.Dial: the
// address is mailboxPrefix and the peer's mailbox. wait, if not zero,
// bounds the allocation of the knocking mailbox and the wait for the
// answer to the knocks (a redial's attempt: the TURN server or the
// mailbox may be gone); zero: ctx alone.
type firstTransport struct {
	ni   *Node
	wait time.Duration
}

func (t firstTransport) Name() string                 { return "ice" }
func (t firstTransport) Service(base string) string   { return base }
func (t firstTransport) FallbackAfter() time.Duration { return 0 }
func (t firstTransport) Close() error                 { return nil }

func (t firstTransport) Listen(context.Context, string, transport.Acceptor) (transport.Listener, error) {
	return nil, errors.ErrUnsupported
}

// Dial knocks on the mailbox at addr with an offer, runs the checks
// against the answer and dials QUIC over the path. ctx bounds it all.
func (t firstTransport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	ni := t.ni
	to, err := netip.ParseAddrPort(strings.TrimPrefix(addr, mailboxPrefix))
	if err != nil {
		return nil, err
	}
	mctx, mcancel := ctx, context.CancelFunc(func() {})
	if t.wait > 0 {
		mctx, mcancel = context.WithTimeout(ctx, t.wait)
	}
	m, err := ice.OpenMailbox(mctx, ni.cfg)
	mcancel()
	if err != nil {
		return nil, fmt.Errorf("first contact: %w", err)
	}
	defer m.Close()
	a, err := ice.NewAgent(ni.cfg)
	if err != nil {
		return nil, err
	}
	p, err := ni.knockAndCheck(ctx, m, to, a, t.wait)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("first contact through %s: %w", addr, err)
	}
	m.Close()
	fp := &firstPath{path: p, claimed: make(chan struct{})}
	ni.first.mu.Lock()
	ni.first.paths[p] = fp
	ni.first.mu.Unlock()
	qc, err := ni.q.DialOver(ctx, p.Lease(), ice.PeerAddr)
	if err != nil {
		ni.unclaimed(fp)
		return nil, err
	}
	tc := iceTC{qc}
	ni.mu.Lock()
	ni.paths[tc] = p
	ni.mu.Unlock()
	ni.c.Go(func() {
		ctx, cancel := context.WithTimeout(ni.ctx, offerTime)
		defer cancel()
		ni.expire(ctx, fp)
	})
	return tc, nil
}

// knockAndCheck gathers a's description, knocks on the mailbox at to
// with it until the answer comes (within wait of the first knock, if not
// zero), and runs the checks as the controlling side.
func (ni *Node) knockAndCheck(ctx context.Context, m *ice.Mailbox, to netip.AddrPort, a *ice.Agent, wait time.Duration) (*ice.Path, error) {
	gctx, gcancel := context.WithTimeout(ctx, gatherTime)
	d, err := a.Gather(gctx)
	gcancel()
	if err != nil {
		return nil, err
	}
	var g [4]byte
	rand.Read(g[:])
	gen := binary.BigEndian.Uint32(g[:])
	body, err := encodeKnock(&wire.ICE{Gen: gen, Ufrag: d.Ufrag, Pwd: d.Pwd, Candidates: d.Candidates})
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(knockEvery)
	defer tick.Stop()
	var giveUp <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		giveUp = t.C
	}
	for err = m.Knock(to.String(), body); err == nil; {
		select {
		case k := <-m.Knocks():
			if k.From != to {
				continue
			}
			ans, err := decodeKnock(k.Token, true)
			if err != nil || ans.Gen != gen {
				continue
			}
			return a.Connect(ctx, true, ice.Description{Ufrag: ans.Ufrag, Pwd: ans.Pwd, Candidates: ans.Candidates})
		case <-tick.C:
			err = m.Knock(to.String(), body)
		case <-giveUp:
			return nil, fmt.Errorf("no answer to the knock within %v", wait)
		case <-m.Done():
			return nil, errors.New("the TURN allocation ended")
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer to the knock: %w", ctx.Err())
		}
	}
	return nil, err
}
