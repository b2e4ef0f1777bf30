package nearnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/transport/quic"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// Paths beyond the LAN (PROTOCOL.md, "Paths beyond the LAN"). Two peers
// whose nodes have ICE servers (Config.ICEServers) prepare a second path
// while their session runs on the LAN: the link's dialer gathers server-
// reflexive and relayed candidates (no host candidates: the LAN path is
// the LAN transports' job) and sends them over the session in an ICE
// message (kind 0x80, an extension an older peer ignores), the other side
// answers with its own, and both run ICE's checks (internal/transport/ice).
// The path they find stands by, kept open by ICE's keepalives. When the
// LAN link breaks, the dialer's redial resumes the session over QUIC on
// that path first (quic.Transport.DialOver; the other side accepts with
// ListenOver), and from then on tries its LAN address again, resuming
// there as soon as it answers (Network framework's better path). Either
// move is an ordinary resume: nothing is lost or delivered twice.

// ICEServer is a STUN or TURN server for Config.ICEServers: URL is
// "stun:host:port", "turn:host:port" (with "?transport=tcp" for TURN over
// TCP, where UDP is blocked) or "turns:host:port" (TURN over TLS);
// Username and Password are a TURN server's long-term credentials.
type ICEServer struct {
	URL      string
	Username string
	Password string
}

// PathKind says how a connection reaches its peer.
type PathKind int

const (
	PathLAN     PathKind = iota // a LAN transport (TCP or QUIC to an address of the peer)
	PathDirect                  // an ICE path through NATs, with no relay
	PathRelayed                 // an ICE path through a TURN relay
)

func (k PathKind) String() string {
	switch k {
	case PathLAN:
		return "lan"
	case PathDirect:
		return "direct"
	case PathRelayed:
		return "relayed"
	}
	return fmt.Sprintf("PathKind(%d)", int(k))
}

// PathInfo describes the path a connection runs on.
type PathInfo struct {
	Kind PathKind
	// RTT is the path's round-trip time: ICE's latest check on an ICE
	// path, QUIC's smoothed RTT on a relayed path through a mailbox and on
	// a LAN path over QUIC; 0 on a LAN path over TCP (not measured).
	RTT time.Duration
}

// Path returns the path the connection's session runs on now; the zero
// PathInfo (PathLAN) while it has no transport connection.
func (c *Conn) Path() PathInfo {
	l := c.links.Send()
	if l == nil {
		return PathInfo{}
	}
	return c.n.pathOf(l)
}

func validateICE(c *Config, bad func(string, any, string) error) error {
	for _, s := range c.ICEServers {
		if _, err := ice.ParseServer(ice.Server(s)); err != nil {
			var ce *ConfigError
			reason := err.Error()
			if errors.As(err, &ce) {
				reason = ce.Reason
			}
			return bad("ICEServers", s.URL, reason)
		}
	}
	return nil
}

// iceNode is what a node keeps for paths beyond the LAN.
type iceNode struct {
	n      *Node
	cfg    ice.Config
	q      *quic.Transport
	ctx    context.Context // ends when the node closes
	cancel context.CancelFunc
	// do runs a LAN dial of the return to the LAN; tests run it in a
	// network namespace.
	do func(func() error) error

	mu    sync.Mutex
	conns map[*Conn]*iceConn
	paths map[transport.Conn]infoer // transport connections over an ICE path or a mailbox
}

// infoer is an ICE path or a mailbox's relayed path.
type infoer interface{ Info() ice.Info }

// iceConn is one session's ICE exchange and path.
type iceConn struct {
	c           *Conn
	controlling bool   // this side dialed the LAN link: it offers, redials and returns
	lanAddr     string // the LAN address to return to

	mu         sync.Mutex // guards the fields below
	gen        uint32
	agent      *ice.Agent
	path       *ice.Path
	ln         transport.Listener
	returning  bool
	lanDialing bool // returnToLAN dials the LAN address

	// The mailboxes (PROTOCOL.md section 16): ours, the peer's address,
	// the listener on a relayed path through ours (the side that did not
	// dial), and whether a dial through it is under way.
	mbox        *ice.Mailbox
	peerMbox    string
	mln         transport.Listener
	mailDialing bool
	knocking    bool
}

// setupICE readies the node for ICE when Config.ICEServers has servers.
func (n *Node) setupICE(server, client *tls.Config) {
	c := n.cfg
	if len(c.ICEServers) == 0 {
		return
	}
	if server == nil {
		// QUIC needs TLS even in SecurityNone (see makeTransports).
		server, client = security.ServerConfig(n.ident, nil), security.ClientConfig(n.ident, nil)
	}
	servers := make([]ice.Server, len(c.ICEServers))
	for i, s := range c.ICEServers {
		servers[i] = ice.Server(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.ice = &iceNode{
		n:   n,
		cfg: ice.Config{Servers: servers, NoHost: true, Logger: c.Logger, CheckTimeout: max(c.ResumeWindow, time.Second)},
		q: quic.New(quic.Options{
			Server: server, Client: client, Authenticated: c.Security != SecurityNone,
			HandshakeTimeout: c.HandshakeTimeout, DropTime: c.DropTime, KeepAliveIdle: c.KeepAliveIdle,
			DisableDatagrams: c.DisableDatagrams, Logger: c.Logger,
		}),
		ctx: ctx, cancel: cancel,
		do:    func(f func() error) error { return f() },
		conns: map[*Conn]*iceConn{},
		paths: map[transport.Conn]infoer{},
	}
}

// closeICE ends every exchange and path.
func (n *Node) closeICE() {
	ni := n.ice
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

// offerICE puts the ICE capability in this node's hello.
func (n *Node) offerICE(h *wire.Hello) {
	if n.ice != nil {
		h.Caps = append(h.Caps, wire.CapICE)
	}
}

// pathOf describes the path of link l.
func (n *Node) pathOf(l *link) PathInfo {
	var p infoer
	if n.ice != nil {
		n.ice.mu.Lock()
		p = n.ice.paths[l.t]
		n.ice.mu.Unlock()
	}
	if p == nil {
		var lan PathInfo
		if x, ok := l.t.(interface{ RTT() time.Duration }); ok {
			lan.RTT = x.RTT()
		}
		return lan
	}
	inf := p.Info()
	k := PathDirect
	if inf.Kind == ice.Relayed {
		k = PathRelayed
	}
	rtt := inf.RTT
	if x, ok := l.t.(interface{ RTT() time.Duration }); ok && rtt == 0 {
		rtt = x.RTT() // QUIC's, where ICE measured none (a mailbox path)
	}
	return PathInfo{Kind: k, RTT: rtt}
}

// iceAttached is told of each link attached to c: the first LAN link the
// node dialed to a peer that takes part starts the exchange, and a link
// over the ICE path that this side dialed starts the return to the LAN.
func (n *Node) iceAttached(c *Conn, l *link) {
	ni := n.ice
	if ni == nil || l.hello == nil || !slices.Contains(l.hello.Caps, wire.CapICE) || !c.resumeOn() {
		return
	}
	ni.mu.Lock()
	ic := ni.conns[c]
	overICE := ni.paths[l.t] != nil
	_, overMailbox := ni.paths[l.t].(*ice.MailPath)
	if ic == nil {
		if !l.Outgoing() || overICE {
			ni.mu.Unlock()
			return
		}
		ic = ni.add(c, true)
		ic.lanAddr = l.dialed
		ni.mu.Unlock()
		ni.goRun(func() { ni.offer(ic) })
		return
	}
	ni.mu.Unlock()
	if overICE && l.Outgoing() && ic.controlling {
		ic.mu.Lock()
		start := !ic.returning
		ic.returning = true
		ic.mu.Unlock()
		if start {
			ni.goRun(func() { ni.returnToLAN(ic) })
		}
	}
	if overMailbox && l.Outgoing() && ic.controlling {
		// Relayed through the mailboxes after the peer moved: a new
		// exchange from where the peer is now may find a direct path.
		ni.goRun(func() { ni.offer(ic) })
	}
}

// upgrade moves a session running through the mailboxes to the ICE path
// p found since, by a resume over it (the side that dialed does it).
func (ni *iceNode) upgrade(ic *iceConn, p *ice.Path) {
	c := ic.c
	cur := c.links.Send()
	if cur == nil {
		return
	}
	ni.mu.Lock()
	_, overMailbox := ni.paths[cur.t].(*ice.MailPath)
	ni.mu.Unlock()
	if !overMailbox {
		return
	}
	ctx, cancel := ni.ctxFor(c, ni.n.cfg.HandshakeTimeout)
	defer cancel()
	l, err := ni.n.dial(ctx, overTransport{ni: ni, pc: p.Lease(), info: p}, "ice", c, 0)
	if err != nil {
		ni.n.cfg.Logger.Debug("nearnet: ICE: moving to the new path failed", "err", err)
		return
	}
	ni.n.attach(l)
}

// add registers c's exchange and drops it when c ends. ni.mu is held.
func (ni *iceNode) add(c *Conn, controlling bool) *iceConn {
	ic := &iceConn{c: c, controlling: controlling}
	ni.conns[c] = ic
	ni.goRun(func() {
		select {
		case <-c.ended:
		case <-ni.ctx.Done():
		}
		ni.drop(ic)
	})
	return ic
}

func (ni *iceNode) goRun(f func()) {
	ni.n.wg.Add(1)
	go func() {
		defer ni.n.wg.Done()
		f()
	}()
}

// drop ends c's exchange and path.
func (ni *iceNode) drop(ic *iceConn) {
	ni.mu.Lock()
	if ni.conns[ic.c] == ic {
		delete(ni.conns, ic.c)
	}
	ni.mu.Unlock()
	ni.reset(ic, nil)
}

// reset closes ic's agent, path and listener, and installs a (the agent
// of a new exchange, or nil).
func (ni *iceNode) reset(ic *iceConn, a *ice.Agent) {
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
	if oldLn != nil {
		oldLn.Close()
	}
	if oldP != nil {
		ni.mu.Lock()
		for tc, p := range ni.paths {
			if p == infoer(oldP) {
				delete(ni.paths, tc)
			}
		}
		ni.mu.Unlock()
		oldP.Close()
	}
	if oldA != nil {
		oldA.Close()
	}
}

// exchangeTime bounds gathering, and then the checks, of one exchange.
const exchangeTime = 30 * time.Second

// ctxFor is a context that ends with the node, with c, or after d.
func (ni *iceNode) ctxFor(c *Conn, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ni.ctx, d)
	go func() {
		select {
		case <-c.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// offer starts an exchange from the LAN link's dialer.
func (ni *iceNode) offer(ic *iceConn) {
	a, d, err := ni.gather(ic.c)
	if err != nil {
		ni.n.cfg.Logger.Debug("nearnet: ICE: no offer", "peer", ic.c.peer.ID.Short(), "err", err)
		return
	}
	ni.reset(ic, a)
	ic.mu.Lock()
	ic.gen++
	gen := ic.gen
	ic.mu.Unlock()
	ni.send(ic.c, &wire.ICE{Gen: gen, Ufrag: d.Ufrag, Pwd: d.Pwd, Candidates: d.Candidates, Mailbox: ni.mailbox(ic)})
}

// mailbox opens ic's mailbox once, and returns its address ("" if none:
// no TURN server over UDP, or it did not answer).
func (ni *iceNode) mailbox(ic *iceConn) string {
	ic.mu.Lock()
	m := ic.mbox
	ic.mu.Unlock()
	if m == nil {
		ctx, cancel := ni.ctxFor(ic.c, 10*time.Second)
		var err error
		m, err = ice.OpenMailbox(ctx, ni.cfg)
		cancel()
		if err != nil {
			ni.n.cfg.Logger.Debug("nearnet: ICE: no mailbox", "err", err)
			return ""
		}
		ic.mu.Lock()
		ic.mbox = m
		ic.mu.Unlock()
		if ic.controlling {
			ni.goRun(func() { ni.hearKnocks(ic, m) })
		}
	}
	return m.Addr()
}

// peerMailbox records the peer's mailbox and knocks once, which lets the
// peer's later packets through our TURN server's relay address.
func (ni *iceNode) peerMailbox(ic *iceConn, addr string) {
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
func (ni *iceNode) hearKnocks(ic *iceConn, m *ice.Mailbox) {
	c := ic.c
	for {
		var k ice.Knock
		select {
		case k = <-m.Knocks():
		case <-c.ended:
			return
		case <-ni.ctx.Done():
			return
		}
		c.mu.Lock()
		wanted := !c.state.Terminal() && (c.susp.Suspended() || !c.via.Viable())
		c.mu.Unlock()
		ic.mu.Lock()
		if ic.mailDialing || !wanted {
			ic.mu.Unlock()
			continue
		}
		ic.mailDialing = true
		ic.mu.Unlock()
		ni.goRun(func() {
			defer func() {
				ic.mu.Lock()
				ic.mailDialing = false
				ic.mu.Unlock()
			}()
			ctx, cancel := ni.ctxFor(c, ni.n.cfg.HandshakeTimeout)
			defer cancel()
			p := m.Path(k.From)
			l, err := ni.n.dial(ctx, overTransport{ni: ni, pc: p, info: p}, "ice-mailbox", c, 0)
			if err != nil {
				ni.n.cfg.Logger.Debug("nearnet: ICE: resume through the mailbox failed", "err", err)
				return
			}
			ni.n.attach(l)
		})
	}
}

// iceSuspended is told that c lost its last link: the side that did not
// dial it has no redial, so it opens a new mailbox (its network may have
// changed) and knocks on the peer's until the session resumes.
func (n *Node) iceSuspended(c *Conn) {
	ni := n.ice
	if ni == nil {
		return
	}
	ni.mu.Lock()
	ic := ni.conns[c]
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
		ni.goRun(func() { ni.knock(ic, peer) })
	}
}

func (ni *iceNode) knock(ic *iceConn, peer string) {
	c := ic.c
	defer func() {
		ic.mu.Lock()
		ic.knocking = false
		ic.mu.Unlock()
	}()
	ctx, cancel := ni.ctxFor(c, 10*time.Second)
	m, err := ice.OpenMailbox(ctx, ni.cfg)
	cancel()
	if err != nil {
		ni.n.cfg.Logger.Debug("nearnet: ICE: no mailbox to knock from", "err", err)
		return
	}
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		m.Close()
		return
	}
	p := m.Path(ap)
	ln, err := ni.q.ListenOver(p, iceAcceptor{ni, p})
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
	for {
		c.mu.Lock()
		waiting := c.susp.Suspended() && !c.state.Terminal()
		c.mu.Unlock()
		if !waiting {
			return
		}
		m.Knock(peer, nil)
		t := time.NewTimer(300 * time.Millisecond)
		select {
		case <-t.C:
		case <-c.ended:
			t.Stop()
			return
		case <-ni.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (ni *iceNode) gather(c *Conn) (*ice.Agent, ice.Description, error) {
	a, err := ice.NewAgent(ni.cfg)
	if err != nil {
		return nil, ice.Description{}, err
	}
	ctx, cancel := ni.ctxFor(c, exchangeTime)
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

// send sends m on c's current link.
func (ni *iceNode) send(c *Conn, m *wire.ICE) {
	b, err := wire.AppendICE(nil, m)
	if err != nil {
		ni.n.cfg.Logger.Warn("nearnet: ICE: cannot encode our description", "err", err)
		return
	}
	if l := c.links.Send(); l != nil {
		l.Enqueue(wire.OpBinary, 0, b)
	}
}

// iceMessage takes an ICE message from the peer on link l. A malformed
// one is ignored (and logged): the session does not depend on it.
func (n *Node) iceMessage(l *link, k wire.Kind, body []byte) {
	ni := n.ice
	if ni == nil || k != wire.KindICE || l.c == nil {
		return
	}
	m, err := wire.ParseICE(body)
	if err != nil {
		n.cfg.Logger.Debug("nearnet: ICE: ignoring a bad message", "peer", l.peer.ID.Short(), "err", err)
		return
	}
	c := l.c
	remote := ice.Description{Ufrag: m.Ufrag, Pwd: m.Pwd, Candidates: m.Candidates}
	ni.mu.Lock()
	ic := ni.conns[c]
	if m.Answer {
		ni.mu.Unlock()
		if ic == nil || !ic.controlling {
			return
		}
		ic.mu.Lock()
		a, current := ic.agent, ic.gen == m.Gen
		ic.mu.Unlock()
		if a != nil && current {
			ni.goRun(func() {
				ni.peerMailbox(ic, m.Mailbox)
				ni.connect(ic, a, remote)
			})
		}
		return
	}
	if ic == nil {
		ic = ni.add(c, false)
	}
	ni.mu.Unlock()
	if ic.controlling {
		return // both offered: only the LAN link's dialer does
	}
	ni.goRun(func() {
		a, d, err := ni.gather(c)
		if err != nil {
			n.cfg.Logger.Debug("nearnet: ICE: no answer", "peer", c.peer.ID.Short(), "err", err)
			return
		}
		ni.reset(ic, a) // a new exchange replaces the one before
		ic.mu.Lock()
		ic.gen = m.Gen
		ic.mu.Unlock()
		ni.send(c, &wire.ICE{Gen: m.Gen, Answer: true, Ufrag: d.Ufrag, Pwd: d.Pwd, Candidates: d.Candidates, Mailbox: ni.mailbox(ic)})
		ni.peerMailbox(ic, m.Mailbox)
		ni.connect(ic, a, remote)
	})
}

// connect runs the checks; the path found stands by (the controlled side
// listens on it for the redial).
func (ni *iceNode) connect(ic *iceConn, a *ice.Agent, remote ice.Description) {
	ctx, cancel := ni.ctxFor(ic.c, exchangeTime)
	defer cancel()
	p, err := a.Connect(ctx, ic.controlling, remote)
	if err != nil {
		ni.n.cfg.Logger.Debug("nearnet: ICE: no path", "peer", ic.c.peer.ID.Short(), "err", err)
		return
	}
	var ln transport.Listener
	if !ic.controlling {
		ln, err = ni.q.ListenOver(p.Lease(), iceAcceptor{ni, p})
		if err != nil {
			ni.n.cfg.Logger.Debug("nearnet: ICE: cannot listen on the path", "err", err)
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
		ni.upgrade(ic, p)
	}
	ni.n.cfg.Logger.Debug("nearnet: ICE: path ready", "peer", ic.c.peer.ID.Short(), "path", fmt.Sprintf("%+v", p.Info()))
}

// iceAcceptor takes links arriving over an ICE path as the node's
// listener does, noting that they run over it.
type iceAcceptor struct {
	ni *iceNode
	p  infoer
}

func (a iceAcceptor) HandleConn(c transport.Conn, deadline time.Time) {
	c = iceTC{c}
	a.ni.mu.Lock()
	a.ni.paths[c] = a.p
	a.ni.mu.Unlock()
	acceptor{a.ni.n}.HandleConn(c, deadline)
}

func (a iceAcceptor) HandleFailure(remote net.Addr, err error) {
	acceptor{a.ni.n}.HandleFailure(remote, err)
}

// overTransport dials QUIC over an ICE path, for Node.dial.
type overTransport struct {
	ni   *iceNode
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

// Err is the QUIC connection's (see Node.dial).
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

// redialICE resumes a suspended c over its ICE path, if this side has
// one ready; it reports whether the session resumed.
func (n *Node) redialICE(ctx context.Context, c *Conn) bool {
	ni := n.ice
	if ni == nil {
		return false
	}
	ni.mu.Lock()
	ic := ni.conns[c]
	ni.mu.Unlock()
	if ic == nil || !ic.controlling {
		return false
	}
	ic.mu.Lock()
	p, lan := ic.path, ic.lanDialing
	ic.mu.Unlock()
	if p == nil || lan || !p.Alive() {
		return false // no path (or it stopped answering), or the LAN is answering again (returnToLAN)
	}
	l, err := n.dial(ctx, overTransport{ni: ni, pc: p.Lease(), info: p}, "ice", c, 0)
	if err != nil {
		n.cfg.Logger.Debug("nearnet: ICE: resume over the path failed", "peer", c.peer.ID.Short(), "err", err)
		return false
	}
	_, _, err = n.attach(l)
	return err == nil
}

// returnToLAN tries the LAN address again while the session runs over the
// ICE path, and resumes there once it answers.
func (ni *iceNode) returnToLAN(ic *iceConn) {
	defer func() {
		ic.mu.Lock()
		ic.returning = false
		ic.mu.Unlock()
	}()
	n, c := ni.n, ic.c
	for i := 0; ; i++ {
		t := time.NewTimer(backoff(min(i, 4)))
		select {
		case <-t.C:
		case <-c.ended:
			t.Stop()
			return
		case <-ni.ctx.Done():
			t.Stop()
			return
		}
		cur := c.links.Send()
		if cur == nil {
			continue // suspended: the redial is at work
		}
		ni.mu.Lock()
		overICE := ni.paths[cur.t] != nil
		ni.mu.Unlock()
		if !overICE {
			return
		}
		ctx, cancel := ni.ctxFor(c, 2*time.Second)
		ic.mu.Lock()
		ic.lanDialing = true
		ic.mu.Unlock()
		var l *link
		err := ni.do(func() error {
			var err error
			l, err = n.dialVia(ctx, n.dialOrder(nil), ic.lanAddr, c)
			return err
		})
		cancel()
		if err == nil {
			n.attach(l)
		}
		ic.mu.Lock()
		ic.lanDialing = false
		ic.mu.Unlock()
		if err == nil {
			return
		}
	}
}
