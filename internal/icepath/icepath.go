// Package icepath runs a node's paths beyond the LAN (PROTOCOL.md, "Paths
// beyond the LAN"). Two peers whose nodes have ICE servers
// (Config.ICEServers) prepare a second path while their session runs on
// the LAN: the link's dialer gathers server-reflexive and relayed
// candidates (no host candidates: the LAN path is the LAN transports' job)
// and sends them over the session in an ICE message (kind 0x80, an
// extension an older peer ignores), the other side answers with its own,
// and both run ICE's checks (internal/transport/ice). The path they find
// stands by, kept open by ICE's keepalives. When the LAN link breaks, the
// dialer's redial resumes the session over QUIC on that path first
// (quic.Transport.DialOver; the other side accepts with ListenOver), and
// from then on tries its LAN address again, resuming there as soon as it
// answers (Network framework's better path). Either move is an ordinary
// resume: nothing is lost or delivered twice.
//
// The node reaches it through a few hooks: the session's Config
// (Suspended, Extension, the redial's Redial), the Handshaker's Caps, the
// node's attach (Attached) and Close; it reaches the node through Config.
package icepath

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nearnet/nearnet/internal/enum"
	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/transport/quic"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// Kind says how a session reaches its peer (the API's PathKind).
type Kind int

const (
	LAN     Kind = iota // a LAN transport
	Direct              // an ICE path through NATs, with no relay
	Relayed             // an ICE path through a TURN relay
)

func (k Kind) String() string { return enum.Name(k, "PathKind", "lan", "direct", "relayed") }

// Servers converts the API's ICE servers.
func Servers[S ~struct{ URL, Username, Password string }](ss []S) []ice.Server {
	out := make([]ice.Server, len(ss))
	for i, s := range ss {
		out[i] = ice.Server(s)
	}
	return out
}

// Config is what paths beyond the LAN take of the node.
type Config struct {
	Servers        []ice.Server
	Server, Client *tls.Config        // the node's; nil in SecurityNone
	Identity       *security.Identity // for QUIC's TLS in SecurityNone
	Authenticated  bool               // not SecurityNone
	ResumeWindow   time.Duration      // bounds ICE's checks (at least a second)
	QUIC           quic.Options       // QUIC's options but TLS
	Logger         *slog.Logger

	Dials    *session.Dials            // the node's dials
	Attach   func(*session.Path) error // hands a link to its Conn (the node's attach)
	Acceptor transport.Acceptor        // the node's listener side
	Go       func(func())              // a goroutine the node waits for at its close

	// Lookup returns the TXT of peer id's record in the node's wide-area
	// domain as the DNS server has it now (nil: no domain, or not found
	// within ctx), for first contact on a redial (redial.go). Nil: none.
	Lookup func(ctx context.Context, id [16]byte) map[string]string
}

// Node is what a node keeps for paths beyond the LAN. A nil *Node (no
// ICE servers) does nothing.
type Node struct {
	c      Config
	cfg    ice.Config
	q      *quic.Transport
	log    *slog.Logger
	ctx    context.Context // ends when the node closes
	cancel context.CancelFunc
	// do runs a LAN dial of the return to the LAN; tests run it in a
	// network namespace.
	do func(func() error) error

	probes probes     // diagnose.go
	first  firstState // first contact (first.go)

	mu    sync.Mutex
	conns map[*session.Session]*iceConn
	paths map[transport.Conn]infoer // transport connections over an ICE path or a mailbox
}

// infoer is an ICE path or a mailbox's relayed path.
type infoer interface{ Info() ice.Info }

// iceConn is one session's ICE exchange and path.
type iceConn struct {
	s           *session.Session
	controlling bool   // this side dialed the LAN link: it offers, redials and returns
	lanAddr     string // the LAN address to return to

	mu         sync.Mutex // guards the fields below
	gen        uint32
	agent      *ice.Agent
	path       *ice.Path
	ln         transport.Listener
	returning  bool
	lanDialing bool // returnToLAN dials the LAN address
	switching  bool // early.go moves the session to the path

	// The mailboxes (PROTOCOL.md section 18): ours, the peer's address,
	// the listener on a relayed path through ours (the side that did not
	// dial), and whether a dial through it is under way.
	mbox        *ice.Mailbox
	peerMbox    string
	mln         transport.Listener
	mailDialing bool
	knocking    bool

	// Beyond the LAN (redial.go): whether the session's latest link runs
	// over an ICE path or a mailbox, and the peer's listening mailbox this
	// side last reached it through by first contact ("" if never).
	beyond   bool
	firstMbx string
}

// New readies paths beyond the LAN when c has servers (nil otherwise), and
// sets its hooks in the sessions' config and the handshake.
func New(c Config, sc *session.Config, hs *session.Handshaker) *Node {
	if len(c.Servers) == 0 {
		return nil
	}
	if c.Server == nil {
		// QUIC needs TLS even in SecurityNone.
		c.Server, c.Client = security.ServerConfig(c.Identity, nil), security.ClientConfig(c.Identity, nil)
	}
	o := c.QUIC
	o.Server, o.Client, o.Authenticated, o.Logger = c.Server, c.Client, c.Authenticated, c.Logger
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ni := &Node{
		c:   c,
		cfg: ice.Config{Servers: c.Servers, NoHost: true, Logger: c.Logger, CheckTimeout: max(c.ResumeWindow, time.Second)},
		q:   quic.New(o),
		log: log, ctx: ctx, cancel: cancel,
		do:    func(f func() error) error { return f() },
		conns: map[*session.Session]*iceConn{},
		paths: map[transport.Conn]infoer{},
	}
	ni.first.init()
	sc.Suspended, sc.Extension, sc.Redial, sc.Inviable = ni.suspended, ni.message, ni.redial, ni.inviable
	hs.Caps = append(hs.Caps, wire.CapICE)
	return ni
}

func short(s *session.Session) string { id := s.Peer().ID; return fmt.Sprintf("%x", id[:4]) }

// Close ends every exchange and path.
func (ni *Node) Close() {
	if ni == nil {
		return
	}
	ni.cancel()
	ni.mu.Lock()
	conns := make([]*iceConn, 0, len(ni.conns))
	for _, ic := range ni.conns {
		conns = append(conns, ic)
	}
	ni.mu.Unlock()
	for _, ic := range conns {
		ni.drop(ic)
	}
	ni.q.Close()
}

// PathOf describes the path of link l (LAN for nil).
func (ni *Node) PathOf(l *session.Path) (Kind, time.Duration) {
	if l == nil {
		return LAN, 0
	}
	var p infoer
	if ni != nil {
		ni.mu.Lock()
		p = ni.paths[l.T]
		ni.mu.Unlock()
	}
	var rtt time.Duration
	if x, ok := l.T.(interface{ RTT() time.Duration }); ok {
		rtt = x.RTT() // QUIC's: a LAN path, or a mailbox path where ICE measured none
	}
	if p == nil {
		return LAN, rtt
	}
	inf := p.Info()
	k := Direct
	if inf.Kind == ice.Relayed {
		k = Relayed
	}
	if inf.RTT != 0 {
		rtt = inf.RTT
	}
	return k, rtt
}

// Attached is told of each link attached to s: the first LAN link the
// node dialed to a peer that takes part starts the exchange, and a link
// over the ICE path that this side dialed starts the return to the LAN.
func (ni *Node) Attached(s *session.Session, l *session.Path) {
	if ni == nil {
		return
	}
	current := s.SendPath() == l // not a duplicate on its way out
	ni.mu.Lock()
	if p := ni.paths[l.T]; p != nil && ni.isFirst(p) && (ni.conns[s] == nil || current) {
		// The session started, or resumed (redial.go), over a path of
		// first contact: it owns the path from now on (resumes over it,
		// closes it at its end).
		ic, started := ni.conns[s], false
		if ic == nil {
			ic, started = ni.add(s, l.Outgoing()), true
		}
		ni.mu.Unlock()
		ni.claim(ic, p, l.Dialed)
		if started {
			return
		}
		ni.mu.Lock()
	}
	ic := ni.conns[s]
	_, beyond := ni.paths[l.T]
	ni.mu.Unlock()
	if ic != nil && current {
		ic.mu.Lock()
		ic.beyond = beyond
		ic.mu.Unlock()
	}
	if l.Hello == nil || !slices.Contains(l.Hello.Caps, wire.CapICE) || !s.ResumeOn() {
		return
	}
	ni.mu.Lock()
	ic = ni.conns[s]
	overICE := ni.paths[l.T] != nil
	_, overMailbox := ni.paths[l.T].(*ice.MailPath)
	if ic == nil {
		if !l.Outgoing() || overICE {
			ni.mu.Unlock()
			return
		}
		ic = ni.add(s, true)
		ic.lanAddr = l.Dialed
		ni.mu.Unlock()
		ni.c.Go(func() { ni.offer(ic) })
		return
	}
	ni.mu.Unlock()
	if overICE && l.Outgoing() && ic.controlling && ic.lanAddr != "" {
		ic.mu.Lock()
		start := !ic.returning
		ic.returning = true
		ic.mu.Unlock()
		if start {
			ni.c.Go(func() { ni.returnToLAN(ic) })
		}
	}
	if overMailbox && l.Outgoing() && ic.controlling {
		// Relayed through the mailboxes after the peer moved: a new
		// exchange from where the peer is now may find a direct path.
		ni.c.Go(func() { ni.offer(ic) })
	}
}

// dialOver dials a link over pc (an ICE path's lease or a mailbox path)
// offering to resume ic's session, and attaches it.
func (ni *Node) dialOver(ctx context.Context, ic *iceConn, pc net.PacketConn, info infoer, addr string) error {
	l, err := ni.c.Dials.Dial(ctx, overTransport{ni: ni, pc: pc, info: info}, addr, ic.s, 0)
	if err != nil {
		return err
	}
	return ni.c.Attach(l)
}

// upgrade moves a session running through the mailboxes to the ICE path
// p found since, by a resume over it (the side that dialed does it).
func (ni *Node) upgrade(ic *iceConn, p *ice.Path) {
	cur := ic.s.SendPath()
	if cur == nil {
		return
	}
	ni.mu.Lock()
	_, overMailbox := ni.paths[cur.T].(*ice.MailPath)
	ni.mu.Unlock()
	if !overMailbox {
		return
	}
	ctx, cancel := ni.ctxFor(ic.s, ni.c.QUIC.HandshakeTimeout)
	defer cancel()
	if err := ni.dialOver(ctx, ic, p.Lease(), p, "ice"); err != nil {
		ni.log.Debug("nearnet: ICE: moving to the new path failed", "err", err)
	}
}

// add registers s's exchange and drops it when s has ended and its last
// link is gone (a link over the ICE path needs the path until its close
// handshake is through). ni.mu is held.
func (ni *Node) add(s *session.Session, controlling bool) *iceConn {
	ic := &iceConn{s: s, controlling: controlling}
	ni.conns[s] = ic
	ni.c.Go(func() {
		select {
		case <-s.Done():
		case <-ni.ctx.Done():
		}
		ni.drop(ic)
	})
	return ic
}

// drop ends s's exchange and path.
func (ni *Node) drop(ic *iceConn) {
	ni.mu.Lock()
	if ni.conns[ic.s] == ic {
		delete(ni.conns, ic.s)
	}
	ni.mu.Unlock()
	ni.reset(ic, nil)
}

// reset closes ic's agent, path and listener, and installs a (the agent
// of a new exchange, or nil).
func (ni *Node) reset(ic *iceConn, a *ice.Agent) {
	ic.mu.Lock()
	oldA, oldP, oldLn := ic.agent, ic.path, ic.ln
	ic.agent, ic.path, ic.ln = a, nil, nil
	var mbox *ice.Mailbox
	var mln transport.Listener
	if a == nil { // the session ended
		mbox, mln = ic.mbox, ic.mln
		ic.mbox, ic.mln = nil, nil
	}
	ic.mu.Unlock()
	if mln != nil {
		mln.Close()
	}
	if mbox != nil {
		mbox.Close()
	}
	ni.closePath(oldP, oldLn)
	if oldA != nil {
		oldA.Close()
	}
	ni.mu.Lock()
	gone := ni.conns[ic.s] != ic
	ni.mu.Unlock()
	if a != nil && gone {
		ni.reset(ic, nil) // dropped while a gathered: drop's reset may have come first
	}
}

// closePath closes an ICE path p and ln, its QUIC listener, either of
// which may be nil.
func (ni *Node) closePath(p *ice.Path, ln transport.Listener) {
	if ln != nil {
		ln.Close()
	}
	if p == nil {
		return
	}
	ni.mu.Lock()
	for tc, x := range ni.paths {
		if x == infoer(p) {
			delete(ni.paths, tc)
		}
	}
	ni.mu.Unlock()
	p.Close()
}

// exchangeTime bounds gathering, and then the checks, of one exchange.
const exchangeTime = 30 * time.Second

// ctxFor is a context that ends with the node, with s, or after d.
func (ni *Node) ctxFor(s *session.Session, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ni.ctx, d)
	go func() {
		select {
		case <-s.Ended():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// offer starts an exchange from the LAN link's dialer.
func (ni *Node) offer(ic *iceConn) {
	a, d, err := ni.gather(ic.s)
	if err != nil {
		ni.log.Debug("nearnet: ICE: no offer", "peer", short(ic.s), "err", err)
		return
	}
	ni.reset(ic, a)
	ic.mu.Lock()
	ic.gen++
	gen := ic.gen
	ic.mu.Unlock()
	ni.Send(ic.s, &wire.ICE{Gen: gen, Ufrag: d.Ufrag, Pwd: d.Pwd, Candidates: d.Candidates, Mailbox: ni.mailbox(ic)})
}

// mailbox opens ic's mailbox once, and returns its address ("" if none:
// no TURN server over UDP, or it did not answer).
func (ni *Node) mailbox(ic *iceConn) string {
	ic.mu.Lock()
	m := ic.mbox
	ic.mu.Unlock()
	if m == nil {
		ctx, cancel := ni.ctxFor(ic.s, 10*time.Second)
		var err error
		m, err = ice.OpenMailbox(ctx, ni.cfg)
		cancel()
		if err != nil {
			ni.log.Debug("nearnet: ICE: no mailbox", "err", err)
			return ""
		}
		ic.mu.Lock()
		ic.mbox = m
		ic.mu.Unlock()
		if ic.controlling {
			ni.c.Go(func() { ni.hearKnocks(ic, m) })
		}
	}
	return m.Addr()
}

// peerMailbox records the peer's mailbox and knocks once, which lets the
// peer's later packets through our TURN server's relay address.
func (ni *Node) peerMailbox(ic *iceConn, addr string) {
	if addr == "" {
		return
	}
	ic.mu.Lock()
	ic.peerMbox = addr
	m := ic.mbox
	ic.mu.Unlock()
	if m != nil {
		m.Knock(addr, nil)
	}
}

// hearKnocks takes the knocks on the mailbox of the side that dialed the
// LAN link: one arriving while the session is suspended or inviable is
// the peer, moved, asking to be dialed through the mailbox.
func (ni *Node) hearKnocks(ic *iceConn, m *ice.Mailbox) {
	s := ic.s
	for {
		var k ice.Knock
		select {
		case k = <-m.Knocks():
		case <-s.Ended():
			return
		case <-ni.ctx.Done():
			return
		}
		wanted := !s.Terminal() && (s.Suspended() || !s.Viable())
		ic.mu.Lock()
		if ic.mailDialing || !wanted {
			ic.mu.Unlock()
			continue
		}
		ic.mailDialing = true
		ic.mu.Unlock()
		ni.c.Go(func() {
			defer func() {
				ic.mu.Lock()
				ic.mailDialing = false
				ic.mu.Unlock()
			}()
			ctx, cancel := ni.ctxFor(s, ni.c.QUIC.HandshakeTimeout)
			defer cancel()
			p := m.Path(k.From)
			if err := ni.dialOver(ctx, ic, p, p, "ice-mailbox"); err != nil {
				ni.log.Debug("nearnet: ICE: resume through the mailbox failed", "err", err)
			}
		})
	}
}

// suspended is told that s lost its last link (s's lock held): the side
// that did not dial it has no redial, so it opens a new mailbox (its
// network may have changed) and knocks on the peer's until the session
// resumes.
func (ni *Node) suspended(s *session.Session) {
	ni.mu.Lock()
	ic := ni.conns[s]
	ni.mu.Unlock()
	if ic == nil || ic.controlling {
		return
	}
	ic.mu.Lock()
	start := !ic.knocking && ic.peerMbox != ""
	ic.knocking = start || ic.knocking
	peer := ic.peerMbox
	ic.mu.Unlock()
	if start {
		ni.c.Go(func() { ni.knock(ic, peer) })
	}
}

func (ni *Node) knock(ic *iceConn, peer string) {
	s := ic.s
	defer func() {
		ic.mu.Lock()
		ic.knocking = false
		ic.mu.Unlock()
	}()
	ctx, cancel := ni.ctxFor(s, 10*time.Second)
	m, err := ice.OpenMailbox(ctx, ni.cfg)
	cancel()
	if err != nil {
		ni.log.Debug("nearnet: ICE: no mailbox to knock from", "err", err)
		return
	}
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		m.Close()
		return
	}
	p := m.Path(ap)
	ln, err := ni.q.ListenOver(p, acceptor{ni, p})
	if err != nil {
		m.Close()
		return
	}
	ic.mu.Lock()
	oldM, oldLn := ic.mbox, ic.mln
	ic.mbox, ic.mln = m, ln
	ic.mu.Unlock()
	if oldLn != nil {
		oldLn.Close()
	}
	if oldM != nil {
		oldM.Close()
	}
	for s.Suspended() && !s.Terminal() {
		m.Knock(peer, nil)
		if !ni.pause(s, 300*time.Millisecond) {
			return
		}
	}
}

// pause waits d, and reports false instead if s ends or the node closes
// first.
func (ni *Node) pause(s *session.Session, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.Ended():
	case <-ni.ctx.Done():
	}
	return false
}

func (ni *Node) gather(s *session.Session) (*ice.Agent, ice.Description, error) {
	a, err := ice.NewAgent(ni.cfg)
	if err != nil {
		return nil, ice.Description{}, err
	}
	ni.c.Go(func() { ni.diagnose(s) })
	ctx, cancel := ni.ctxFor(s, exchangeTime)
	defer cancel()
	d, err := a.Gather(ctx)
	if err == nil && len(d.Candidates) == 0 {
		err = errors.New("no candidate gathered: no STUN or TURN server answered")
	}
	if err != nil {
		a.Close()
		return nil, ice.Description{}, err
	}
	return a, d, nil
}

// Send sends m on s's current link.
func (ni *Node) Send(s *session.Session, m *wire.ICE) {
	b, err := wire.AppendICE(nil, m)
	if err != nil {
		ni.log.Warn("nearnet: ICE: cannot encode our description", "err", err)
		return
	}
	if l := s.SendPath(); l != nil {
		l.Enqueue(wire.OpBinary, 0, b)
	}
}

// message takes an extension message from the peer on link l. A malformed
// ICE message is ignored (and logged): the session does not depend on it.
func (ni *Node) message(l *session.Path, k wire.Kind, body []byte) {
	s := l.Session()
	if k != wire.KindICE || s == nil {
		return
	}
	m, err := wire.ParseICE(body)
	if err != nil {
		ni.log.Debug("nearnet: ICE: ignoring a bad message", "peer", short(s), "err", err)
		return
	}
	remote := ice.Description{Ufrag: m.Ufrag, Pwd: m.Pwd, Candidates: m.Candidates}
	ni.mu.Lock()
	ic := ni.conns[s]
	if m.Answer {
		ni.mu.Unlock()
		if ic == nil || !ic.controlling {
			return
		}
		ic.mu.Lock()
		a, current := ic.agent, ic.gen == m.Gen
		ic.mu.Unlock()
		if a != nil && current {
			ni.c.Go(func() {
				ni.peerMailbox(ic, m.Mailbox)
				ni.connect(ic, a, remote)
			})
		}
		return
	}
	if ic == nil {
		ic = ni.add(s, false)
	}
	ni.mu.Unlock()
	if ic.controlling {
		return // both offered: only the LAN link's dialer does
	}
	ni.c.Go(func() {
		a, d, err := ni.gather(s)
		if err != nil {
			ni.log.Debug("nearnet: ICE: no answer", "peer", short(s), "err", err)
			return
		}
		ni.reset(ic, a) // a new exchange replaces the one before
		ic.mu.Lock()
		ic.gen = m.Gen
		ic.mu.Unlock()
		ni.Send(s, &wire.ICE{Gen: m.Gen, Answer: true, Ufrag: d.Ufrag, Pwd: d.Pwd, Candidates: d.Candidates, Mailbox: ni.mailbox(ic)})
		ni.peerMailbox(ic, m.Mailbox)
		ni.connect(ic, a, remote)
	})
}

// connect runs the checks; the path found stands by (the controlled side
// listens on it for the redial).
func (ni *Node) connect(ic *iceConn, a *ice.Agent, remote ice.Description) {
	ctx, cancel := ni.ctxFor(ic.s, exchangeTime)
	defer cancel()
	p, err := a.Connect(ctx, ic.controlling, remote)
	if err != nil {
		ni.log.Debug("nearnet: ICE: no path", "peer", short(ic.s), "err", err)
		ni.noPath(ic.s, err)
		return
	}
	var ln transport.Listener
	if !ic.controlling {
		ln, err = ni.q.ListenOver(p.Lease(), acceptor{ni, p})
		if err != nil {
			ni.log.Debug("nearnet: ICE: cannot listen on the path", "err", err)
			return
		}
	}
	ic.mu.Lock()
	if ic.agent != a {
		ic.mu.Unlock()
		if ln != nil {
			ln.Close()
		}
		p.Close()
		return
	}
	ic.path, ic.ln = p, ln
	ic.mu.Unlock()
	if ic.controlling {
		ni.c.Go(func() { ni.watch(ic, p) }) // standby.go
		ni.upgrade(ic, p)
	}
	ni.log.Debug("nearnet: ICE: path ready", "peer", short(ic.s), "path", fmt.Sprintf("%+v", p.Info()))
}

// acceptor takes links arriving over an ICE path as the node's listener
// does, noting that they run over it.
type acceptor struct {
	ni *Node
	p  infoer
}

func (a acceptor) HandleConn(c transport.Conn, deadline time.Time) {
	c = iceTC{c}
	a.ni.mu.Lock()
	a.ni.paths[c] = a.p
	a.ni.mu.Unlock()
	a.ni.c.Acceptor.HandleConn(c, deadline)
}

func (a acceptor) HandleFailure(remote net.Addr, err error) {
	a.ni.c.Acceptor.HandleFailure(remote, err)
}

// overTransport dials QUIC over an ICE path, for Dials.Dial.
type overTransport struct {
	ni   *Node
	pc   net.PacketConn // a lease of an ICE path, or a mailbox path
	info infoer
}

func (t overTransport) Name() string                 { return "ice" }
func (t overTransport) Service(base string) string   { return base }
func (t overTransport) FallbackAfter() time.Duration { return 0 }
func (t overTransport) Close() error                 { return nil }

func (t overTransport) Listen(context.Context, string, transport.Acceptor) (transport.Listener, error) {
	return nil, errors.ErrUnsupported
}

func (t overTransport) Dial(ctx context.Context, _ string) (transport.Conn, error) {
	qc, err := t.ni.q.DialOver(ctx, t.pc, ice.PeerAddr)
	if err != nil {
		return nil, err
	}
	tc := iceTC{qc}
	t.ni.mu.Lock()
	t.ni.paths[tc] = t.info
	t.ni.mu.Unlock()
	return tc, nil
}

// iceTC is a QUIC connection over an ICE path as the session sees it:
// the peer's abort (QUIC's code 1006, the QUIC form of a TCP reset) is a
// reset, which the session resumes from, as over TCP. A side that resumes
// on another path ends the old one that way, and the peer, whose resume
// dial may still be under way, must wait for it rather than fail.
type iceTC struct{ transport.Conn }

func (c iceTC) Control() net.Conn { return iceControl{c.Conn.Control()} }

// RTT is the QUIC connection's.
func (c iceTC) RTT() time.Duration {
	if x, ok := c.Conn.(interface{ RTT() time.Duration }); ok {
		return x.RTT()
	}
	return 0
}

// Err is the QUIC connection's (see session.Dials.Dial).
func (c iceTC) Err() error {
	if x, ok := c.Conn.(interface{ Err() error }); ok {
		return resetFor(x.Err())
	}
	return nil
}

type iceControl struct{ net.Conn }

func (c iceControl) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	return n, resetFor(err)
}

// resetFor maps the peer's abort to a reset.
func resetFor(err error) error {
	var ce *transport.CloseError
	if errors.As(err, &ce) && ce.Code == wire.CloseAbnormal {
		return fmt.Errorf("%w (%v)", syscall.ECONNRESET, err)
	}
	return err
}

// redial resumes a suspended s over its ICE path, if this side has one
// ready; it reports whether the session resumed. The session's redial
// calls it before each round.
func (ni *Node) redial(ctx context.Context, s *session.Session) bool {
	ni.mu.Lock()
	ic := ni.conns[s]
	ni.mu.Unlock()
	if ic == nil || !ic.controlling {
		return false
	}
	ic.mu.Lock()
	p, lan, beyond := ic.path, ic.lanDialing, ic.beyond
	ic.mu.Unlock()
	if lan {
		return false // the LAN is answering again (returnToLAN)
	}
	if p == nil || !p.Answering(answeringTime) {
		// No path, or it stopped answering: a session that ran beyond
		// the LAN tries the peer's listening mailbox (redial.go).
		return beyond && ni.redialFirst(ctx, ic)
	}
	if err := ni.dialOver(ctx, ic, p.Lease(), p, "ice"); err != nil {
		ni.log.Debug("nearnet: ICE: resume over the path failed", "peer", short(s), "err", err)
		return false
	}
	return true
}

// returnToLAN tries the LAN address again while the session runs over the
// ICE path, and resumes there once it answers.
func (ni *Node) returnToLAN(ic *iceConn) {
	defer func() {
		ic.mu.Lock()
		ic.returning = false
		ic.mu.Unlock()
	}()
	s, d := ic.s, ni.c.Dials
	for i := 0; ; i++ {
		if !ni.pause(s, session.Backoff(min(i, 4))) {
			return
		}
		cur := s.SendPath()
		if cur == nil {
			continue // suspended: the redial is at work
		}
		ni.mu.Lock()
		overICE := ni.paths[cur.T] != nil
		ni.mu.Unlock()
		if !overICE {
			return
		}
		ctx, cancel := ni.ctxFor(s, 2*time.Second)
		ic.mu.Lock()
		ic.lanDialing = true
		ic.mu.Unlock()
		var l *session.Path
		err := ni.do(func() error {
			var err error
			l, err = d.Via(ctx, d.Order(nil), ic.lanAddr, s)
			return err
		})
		cancel()
		if err == nil {
			ni.c.Attach(l)
		}
		ic.mu.Lock()
		ic.lanDialing = false
		ic.mu.Unlock()
		if err == nil {
			return
		}
	}
}
