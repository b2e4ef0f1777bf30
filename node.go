package nearnet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/internal/advert"
	"github.com/nearnet/nearnet/internal/config"
	"github.com/nearnet/nearnet/internal/icepath"
	linkpkg "github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/stream"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/all"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// Node is one peer: it listens, advertises, browses, and holds one [Conn]
// per connected peer. Create it with [NewNode], start accepting with
// [Node.Listen], reach others with [Node.Connect]. A Node is safe for
// concurrent use by multiple goroutines; Close ends everything it started.
type Node struct {
	cfg      *Config
	linkCfg  linkpkg.Config           // what links take of cfg
	sessCfg  session.Config           // what sessions take of cfg
	hs       session.Handshaker       // the link handshake
	ice      *icepath.Node            // paths beyond the LAN; nil without Config.ICEServers
	dialer   session.Dials            // makes links: dials and accepts
	acceptor *session.Acceptor[*Conn] // takes the connections the transports accept
	id       PeerID
	ident    *security.Identity
	verify   func(*x509.Certificate) error // pinned/PKI check; nil otherwise
	pair     pairState                     // pairing by a short code (pairing.go)

	// The transports of Config.Transport, in the order they listen (the
	// first one's address is Addr); dialer.Dialers is the order Connect
	// tries them.
	transports []transport.Transport

	mu        sync.Mutex // guards the fields below
	name      string
	adverts   map[PeerID]Advert // nearnet peers seen by any browse, for Connect by name or ID
	listeners []transport.Listener
	listening bool
	disc      *discovery.Responder
	wide      *discovery.WideAreaRegistration // Config.Domain (widearea.go)
	closed    atomic.Bool                     // set by Close

	boot  string            // names this run of the node in hellos (session resume)
	paths session.PathWatch // the path monitor

	conns   session.Table[*Conn]        // the Conn of each peer (its own lock; after a session's)
	handles stream.Handles[streamEntry] // link stream handles, for incoming streams (stream.go)

	events session.Events // OnStateChange and OnViability: one at a time, in order, holding no lock

	dials   chan struct{} // a place per dial running (Config.MaxDials)
	acceptq chan *Conn
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// NewNode validates cfg and returns a Node that has opened nothing yet.
// An invalid Config field is reported as a [*ConfigError] naming it.
func NewNode(cfg *Config) (*Node, error) {
	c, err := cfg.clone()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     c,
		id:      c.PeerID,
		ident:   c.Identity,
		adverts: make(map[PeerID]Advert),
		acceptq: make(chan *Conn, c.AcceptBacklog),
		dials:   make(chan struct{}, c.MaxDials),
		done:    make(chan struct{}),
	}
	if n.id.IsZero() {
		n.id = NewPeerID()
	}
	v := c.values()
	n.linkCfg = config.Link(v, c.Logger)
	rxBudget, txBudget := session.NewBudgets(c.MemoryBudget)
	n.sessCfg = session.Config{
		ReceiveBuffer: c.ReceiveBuffer, SendBuffer: c.SendBuffer, RxBudget: rxBudget, TxBudget: txBudget,
		HandshakeTimeout: c.HandshakeTimeout, ResumeWindow: c.ResumeWindow, DropTime: c.DropTime,
		ViabilityDebounce: c.ViabilityDebounce, Logger: c.Logger, NodeDone: n.done,
		Go:        n.wg.Go,
		ErrClosed: ErrClosed, ErrNoDatagrams: ErrDatagramsUnavailable, FromTransport: fromTransport, PeerError: closeErrorFor,
		CloseError: func(code int, reason string) error { return &CloseError{Code: code, Reason: reason} },
		Lost:       func(err error, un [][]byte) error { return &SessionLostError{Err: err, Undelivered: un} },
	}
	var boot [8]byte
	rand.Read(boot[:])
	n.boot = hex.EncodeToString(boot[:])
	n.name = c.Name
	if n.name == "" {
		n.name = "nearnet-" + n.id.Short()
	}
	if n.ident == nil {
		if n.ident, err = security.NewIdentity(); err != nil {
			return nil, err
		}
	}
	var server, client *tls.Config // none with SecurityNone
	if c.Security != SecurityNone {
		if n.verify, err = config.Verifier(c.Trust, c.KnownPeersFile, c.TrustOnFirstUse, c.Roots); err != nil {
			return nil, exported(err)
		}
		if c.Security == SecurityPinned {
			n.verify = n.pair.pins.Verifier(n.verify) // and the peers paired since
		}
		server, client = security.ServerConfig(n.ident, nil), security.ClientConfig(n.ident, nil)
	}
	dialers, err := n.makeTransports(v, server, client)
	if err != nil {
		return nil, err
	}
	n.hs = n.handshaker()
	n.conns.Init(func(c *Conn) *session.Session { return c.s }, ErrClosed)
	n.dialer = session.Dials{
		HS: &n.hs, LinkCfg: &n.linkCfg, Dialers: dialers, Slots: n.dials, NodeDone: n.done,
		HandshakeTimeout: c.HandshakeTimeout, Logger: c.Logger, Tunnel: session.NewTunnelPaths(c.TunnelWithHost, c.Tunnel),
		Wrap: func(addr string, incoming bool, stage string, err error) error {
			return &HandshakeError{Addr: addr, Incoming: incoming, Stage: stage, Err: err}
		},
		Final: isRejection, FromTransport: fromTransport, ErrClosed: ErrClosed, ErrNoTransport: errNoTransport,
		PairingFor: pairingFor,
	}
	n.acceptor = &session.Acceptor[*Conn]{Dials: &n.dialer, Stream: n.acceptStream, Attach: n.attach,
		Queue: n.acceptq, Spawn: n.wg.Go, Failed: n.rejected}
	n.ice = icepath.New(icepath.Config{
		Servers: icepath.Servers(c.ICEServers), Server: server, Client: client, Identity: n.ident,
		Authenticated: c.Security != SecurityNone, ResumeWindow: c.ResumeWindow, Logger: c.Logger,
		QUIC:  config.QUIC(v),
		Dials: &n.dialer, Acceptor: n.acceptor, Go: n.sessCfg.Go,
		Attach: func(l *link) error { _, _, err := n.attach(l); return err },
		Lookup: func(ctx context.Context, id [16]byte) map[string]string {
			return advert.WideTXT(ctx, n.wideAreaConfig(), n.serviceTypes(), txtID, PeerID(id).String())
		},
	}, &n.sessCfg, &n.hs)
	return n, nil
}

// makeTransports sets up the transports of Config.Transport and the
// order Connect tries them (internal/transport/all).
func (n *Node) makeTransports(v *config.Values, server, client *tls.Config) (dialers []transport.Transport, err error) {
	n.transports, dialers, err = all.Make(config.Transports(v, all.Options{Server: server, Client: client, Identity: n.ident,
		Loopback: all.Loopback(n.cfg.Interfaces), Logger: n.cfg.Logger, Tunnel: n.cfg.Tunnel}))
	return dialers, exported(err)
}

// ID returns this node's PeerID.
func (n *Node) ID() PeerID { return n.id }

// Name returns the instance name: Config.Name, the default, or the name
// discovery settled on after a conflict.
func (n *Node) Name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.name
}

// Fingerprint returns the fingerprint of this node's identity, which
// pinned peers put in their Trust list.
func (n *Node) Fingerprint() security.Fingerprint { return n.ident.Fingerprint() }

// Addr returns the listening address, or nil before Listen: the TCP
// listener's, or with TransportQUIC the UDP socket's. With TransportAuto
// both listen on the same port number.
func (n *Node) Addr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.listeners) == 0 {
		return nil
	}
	return n.listeners[0].Addr()
}

// Listen opens the listeners of Config.Transport (TCP, QUIC on UDP, or
// both on the same port number), starts accepting connections (take them
// with Accept) and, unless Config.Hidden, advertises the node over DNS-SD:
// "_app._tcp" for TCP, "_app._udp" for QUIC. It returns once the
// advertisement is registered, which includes the probing mDNS requires
// (under a second). ctx bounds only that start-up.
func (n *Node) Listen(ctx context.Context) error {
	if err := n.keep(func() error {
		if n.listening {
			return errors.New("nearnet: Listen called twice")
		}
		n.listening = true
		return nil
	}); err != nil {
		return err
	}
	n.startPathMonitor()
	addr := session.ListenAddr(n.cfg.ListenAddr, all.Loopback(n.cfg.Interfaces) && !n.cfg.tunnelOnly())
	lns, err := transport.ListenAll(ctx, n.transports, addr, n.acceptor)
	if err != nil {
		return fmt.Errorf("nearnet: listen: %w", err)
	}
	if err := n.keep(func() error { n.listeners = lns; return nil }); err != nil {
		for _, ln := range lns { // Close ran meanwhile and missed these.
			ln.Close()
		}
		return err
	}
	if n.cfg.Hidden || n.cfg.noDiscovery() {
		return nil
	}
	return n.advertise(ctx, session.Port(lns[0].Addr()))
}

// keep runs set under mu unless the node is closed (ErrClosed).
func (n *Node) keep(set func() error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed.Load() {
		return ErrClosed
	}
	return set()
}

// rejected reports an incoming connection refused during its handshake.
func (n *Node) rejected(remote net.Addr, err error) {
	if se, ok := errorsAs[*transport.StageError](err); ok {
		err = &HandshakeError{Addr: remote.String(), Incoming: true, Stage: se.Stage, Err: se.Err}
	}
	n.cfg.Logger.Debug("nearnet: incoming connection refused", "remote", remote, "err", err)
	if f := n.cfg.OnReject; f != nil {
		f(remote, err)
	}
}

// attach gives a handshaken link to the peer's Conn, creating the Conn if
// it is the first link to that peer (session.Table.Attach). isNew reports
// whether this link made the Conn ready (it was created here, or was
// preparing).
func (n *Node) attach(l *link) (c *Conn, isNew bool, err error) {
	mk := func(l *link) *Conn {
		c := newConn(n, l.Peer, StateReady)
		c.s.SetPeerBoot(l.PeerBoot)
		return c
	}
	end := func(reason string) {
		sendCloseNow(l, &CloseError{Code: wire.CloseNormal, Reason: reason})
		l.Fail(ErrClosed)
	}
	c, isNew, ok := n.conns.Attach(l, n.boot, mk, end)
	if !ok {
		return nil, false, ErrClosed
	}
	n.acceptStreams(l)
	n.ice.Attached(c.s, l)
	return c, isNew, nil
}

// resumeOffer returns the resume offer for l's hello, or nil.
func (n *Node) resumeOffer(l *link) *wire.Resume { return n.conns.ResumeOffer(l, n.boot) }

// addHandle lets streams that name l's handle find c.
func (n *Node) addHandle(l *link, c *Conn) {
	n.handles.Add(l.Handle, streamEntry{c: c, key: l.StreamKey})
}

// forget removes an ended Conn from the peer table. It may be called with
// the session's lock held: the table's lock comes after it.
func (n *Node) forget(c *Conn) { n.conns.Forget(c.id, c) }

// Accept returns the next connection a peer opened to this node. A peer
// that both dialed and was dialed at the same moment yields one Conn,
// which may come from Accept or from Connect, or both (the same *Conn).
func (n *Node) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-n.acceptq:
		return c, nil
	case <-n.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Peers returns the connections that are currently ready.
func (n *Node) Peers() []*Conn {
	cs := n.conns.All()
	ready := cs[:0]
	for _, c := range cs {
		if s, _ := c.State(); s.Kind == StateReady {
			ready = append(ready, c)
		}
	}
	return ready
}

// Broadcast sends p to every ready peer, a loop over Peers. It returns
// the errors of the sends that failed, joined, or nil.
func (n *Node) Broadcast(ctx context.Context, p []byte) error {
	var errs []error
	for _, c := range n.Peers() {
		if err := c.SendMessage(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.id.Short(), err))
		}
	}
	return errors.Join(errs...)
}

// Connect returns the connection to target, dialing if there is none yet.
// target is "host:port", a PeerID, or an instance name; the last two are
// looked up over DNS-SD (results of a running Browse are used at once).
// Connect blocks until the connection is ready or ctx is done; once it has
// returned, ctx no longer matters.
//
// A refusal by the peer is a [*RejectedError] (or [ErrKeyMismatch]);
// other failures are a [*HandshakeError] naming the stage.
func (n *Node) Connect(ctx context.Context, target string) (*Conn, error) {
	if target == "" {
		return nil, errors.New("nearnet: Connect: empty target")
	}
	if _, port, err := net.SplitHostPort(target); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("nearnet: Connect %q: bad port", target)
		}
		return n.connectAddrs(ctx, PeerID{}, "", []string{target}, nil, nil)
	}
	a, err := n.Resolve(ctx, target)
	if err != nil {
		return nil, err
	}
	return n.ConnectAdvert(ctx, a)
}

// ConnectAdvert connects to a peer found by Browse (beyond the LAN too,
// through its TURN mailbox: PROTOCOL.md section 18, first contact).
func (n *Node) ConnectAdvert(ctx context.Context, a Advert) (*Conn, error) {
	addrs, offered, err := advertTargets(a)
	if err != nil {
		return nil, err
	}
	return n.connectAddrs(ctx, a.ID, a.Name, addrs, offered, n.ice.Via(a.TXT))
}

// connectAddrs dials addrs in turn, each over the transports of dialer.Order
// for what the peer offers, then the extra attempts, until one works. With a known peer ID
// the Conn exists from the start, in state preparing, and concurrent
// Connects to the same peer wait for it instead of dialing again.
func (n *Node) connectAddrs(ctx context.Context, id PeerID, name string, addrs, offered []string, extra []transport.Attempt) (*Conn, error) {
	order := n.dialer.Order(offered)
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: it offers %q, this node dials %v", errNoTransport, offered, n.cfg.Transport)
	}
	return session.ConnectPeer(ctx, &session.Conns[*Conn]{
		Table: &n.conns, Dials: &n.dialer, Start: n.startPathMonitor, Spawn: n.wg.Go, Waiting: unwrapSingleRejection,
		New: func(id [16]byte, name string) *Conn {
			return newConn(n, session.Peer{ID: id, Name: name}, StatePreparing)
		},
		WaitReady:   func(ctx context.Context, c *Conn) (*Conn, error) { return c.waitReady(ctx) },
		Attach:      func(l *link) (*Conn, error) { c, _, err := n.attach(l); return c, err },
		Retry:       n.cfg.RetryConnect,
		PathChanged: n.paths.Changed, Extra: extra,
	}, id, name, addrs, order)
}

// unwrapSingleRejection surfaces a rejection as the error itself, so that
// callers can errors.As it directly and print its reason.
func unwrapSingleRejection(err error) error {
	if he, ok := err.(*HandshakeError); ok && isRejection(he.Err) {
		return he.Err
	}
	return err
}

// Close stops listening, withdraws the advertisement (goodbye packets),
// closes every connection gracefully with close code 1001, going away
// (Config.CloseTimeout at most), and
// waits for the node's goroutines to end.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed.Load() {
		n.mu.Unlock()
		return nil
	}
	n.closed.Store(true)
	close(n.done)
	if p := n.pair.cur.Load(); p != nil {
		p.s.Close(ErrClosed) // its Wait returns
	}
	lns, disc, wide := n.listeners, n.disc, n.wide
	conns := n.conns.Close()
	n.mu.Unlock()
	var errs []error
	for _, ln := range lns {
		ln.Close() // stop accepting
	}
	if disc != nil {
		errs = append(errs, disc.Close())
	}
	if wide != nil {
		errs = append(errs, wide.Close())
	}
	session.Parallel(conns, func(c *Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CloseTimeout)
		defer cancel()
		c.shutdown(ctx, wire.CloseGoingAway, "node shutting down")
	})
	session.Parallel(conns, (*Conn).closeStreams)
	// Every QUIC connection still open ends with code 1001 as its
	// socket closes.
	for _, t := range n.transports {
		t.Close()
	}
	n.ice.Close()
	n.paths.Stop()
	n.wg.Wait()
	n.paths.Close()
	// Connections handed to neither Accept nor anyone else.
	session.Drain(n.acceptq, (*Conn).Abort)
	return errors.Join(errs...)
}
