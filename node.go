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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/discovery"
	linkpkg "github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/quic"
	"github.com/nearnet/nearnet/internal/transport/tcp"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/pathmon"
	"github.com/nearnet/nearnet/proxy"
	"github.com/nearnet/nearnet/security"
)

// Node is one peer: it listens, advertises, browses, and holds one [Conn]
// per connected peer. Create it with [NewNode], start accepting with
// [Node.Listen], reach others with [Node.Connect]. A Node is safe for
// concurrent use by multiple goroutines; Close ends everything it started.
type Node struct {
	cfg     *Config
	linkCfg linkpkg.Config // what links take of cfg
	id      PeerID
	ident   *security.Identity
	verify  func(*x509.Certificate) error // pinned/PKI check; nil otherwise

	// The transports of Config.Transport, in the order they listen (the
	// first one's address is Addr), and the order Connect tries them.
	transports []transport.Transport
	dialers    []transport.Transport

	mu        sync.Mutex // guards the fields below
	name      string
	conns     map[PeerID]*Conn
	adverts   map[PeerID]Advert // nearnet peers seen by any browse, for Connect by name or ID
	listeners []transport.Listener
	listening bool
	disc      *discovery.Responder
	closed    atomic.Bool // set by Close

	boot   string           // names this run of the node in hellos (session resume)
	pm     *pathmon.Monitor // path monitor; guarded by mu
	pmOnce sync.Once
	ice    *iceNode // paths beyond the LAN (ice.go); nil without Config.ICEServers
	pmStop context.CancelFunc
	pathCh chan struct{} // closed and replaced at each path change; guarded by mu

	smu      sync.Mutex             // guards handles and handleCh
	handles  map[string]streamEntry // link stream handles, for incoming streams (stream.go)
	handleCh chan struct{}          // closed when a handle is added; nil if nobody waits

	evmu          sync.Mutex // guards events and eventsRunning; taken after any other lock
	events        []func()   // callbacks waiting for the event goroutine (notify)
	eventsRunning bool

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
		linkCfg: linkConfig(c),
		id:      c.PeerID,
		ident:   c.Identity,
		conns:   make(map[PeerID]*Conn),
		adverts: make(map[PeerID]Advert),
		handles: make(map[string]streamEntry),
		acceptq: make(chan *Conn, c.AcceptBacklog),
		dials:   make(chan struct{}, c.MaxDials),
		done:    make(chan struct{}),
	}
	if n.id.IsZero() {
		n.id = NewPeerID()
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
		if n.verify, err = verifierFor(c); err != nil {
			return nil, err
		}
		server, client = security.ServerConfig(n.ident, nil), security.ClientConfig(n.ident, nil)
	}
	if err := n.makeTransports(server, client); err != nil {
		return nil, err
	}
	n.setupICE(server, client)
	return n, nil
}

// maxReadAhead is the largest read-ahead buffer of a stream connection; a
// smaller Config.StreamBuffer makes it smaller.
const maxReadAhead = 256 << 10

// makeTransports sets up the transports of Config.Transport and the
// order Connect tries them: TCP first unless PreferQUIC, and TCP alone
// through a proxy (QUIC cannot follow one).
func (n *Node) makeTransports(server, client *tls.Config) error {
	c := n.cfg
	var tcpT, quicT transport.Transport
	if c.Transport != TransportQUIC {
		o := tcp.Options{
			Server: server, Client: client,
			ProxyFromEnvironment: c.ProxyFromEnvironment,
			KeepAlive:            net.KeepAliveConfig{Enable: true, Idle: c.KeepAliveIdle, Interval: c.KeepAliveInterval, Count: c.KeepAliveCount},
			DropTime:             c.DropTime,
			HandshakeTimeout:     c.HandshakeTimeout,
			StreamReadAhead:      min(c.StreamBuffer, maxReadAhead),
			DisableDatagrams:     c.DisableDatagrams,
			DatagramIdleTimeout:  c.DatagramIdleTimeout,
			Loopback:             allLoopback(c.Interfaces),
			Logger:               c.Logger,
		}
		if c.Proxy != "" {
			var err error
			if o.Proxy, err = proxy.ParseWith(c.Proxy, tcp.New(o).Dialer()); err != nil {
				var ue *proxy.URLError
				value := "(redacted)"
				if errors.As(err, &ue) {
					value = ue.URL
				}
				return &ConfigError{Field: "Config.Proxy", Value: value, Reason: err.Error()}
			}
		}
		tcpT = tcp.New(o)
		n.transports = append(n.transports, tcpT)
	}
	if c.Transport != TransportTCP {
		qserver, qclient := server, client
		if server == nil {
			// No TLS over TCP in SecurityNone, but QUIC cannot run
			// without it: the node's identity, authenticating nobody.
			qserver, qclient = security.ServerConfig(n.ident, nil), security.ClientConfig(n.ident, nil)
		}
		quicT = quic.New(quic.Options{
			Server: qserver, Client: qclient, Authenticated: c.Security != SecurityNone,
			HandshakeTimeout: c.HandshakeTimeout, DropTime: c.DropTime, KeepAliveIdle: c.KeepAliveIdle,
			DisableDatagrams: c.DisableDatagrams, Loopback: allLoopback(c.Interfaces), Logger: c.Logger,
		})
		n.transports = append(n.transports, quicT)
	}
	switch {
	case tcpT == nil || quicT == nil:
		n.dialers = n.transports
	case c.Proxy != "" || c.ProxyFromEnvironment:
		n.dialers = []transport.Transport{tcpT}
	case c.PreferQUIC:
		n.dialers = []transport.Transport{quicT, tcpT}
	default:
		n.dialers = []transport.Transport{tcpT, quicT}
	}
	return nil
}

// notify queues an application callback (OnStateChange, OnViability).
// They run one at a time, in the order the changes happened, on a
// goroutine that holds no lock of the library: a callback may call any
// method of a Conn or the Node, Close included, without deadlocking.
func (n *Node) notify(f func()) {
	n.evmu.Lock()
	defer n.evmu.Unlock()
	n.events = append(n.events, f)
	if n.eventsRunning {
		return
	}
	n.eventsRunning = true
	go func() {
		for {
			n.evmu.Lock()
			if len(n.events) == 0 {
				n.events, n.eventsRunning = nil, false
				n.evmu.Unlock()
				return
			}
			f := n.events[0]
			n.events[0] = nil
			n.events = n.events[1:]
			n.evmu.Unlock()
			f()
		}
	}()
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
	n.mu.Lock()
	if n.closed.Load() {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.listening {
		n.mu.Unlock()
		return errors.New("nearnet: Listen called twice")
	}
	n.listening = true
	n.mu.Unlock()
	addr := n.cfg.ListenAddr
	if addr == "" {
		addr = ":0"
	}
	if host, port, _ := net.SplitHostPort(addr); host == "" && allLoopback(n.cfg.Interfaces) {
		addr = net.JoinHostPort("127.0.0.1", port) // discovery stays on loopback: so does the listener
	}
	n.startPathMonitor()
	lns, err := n.listen(ctx, addr)
	if err != nil {
		return fmt.Errorf("nearnet: listen: %w", err)
	}
	n.mu.Lock()
	if n.closed.Load() {
		// Close ran meanwhile and missed these.
		n.mu.Unlock()
		for _, ln := range lns {
			ln.Close()
		}
		return ErrClosed
	}
	n.listeners = lns
	n.mu.Unlock()
	if n.cfg.Hidden {
		return nil
	}
	_, port, _ := net.SplitHostPort(lns[0].Addr().String())
	p, _ := strconv.Atoi(port)
	return n.advertise(ctx, p)
}

// listen opens the listeners of the node's transports on addr. All take
// the same port number, so that "host:port" and an advertisement's port
// name any of them: with port 0, a few system-chosen ports of the first
// are tried until the same port is free for the others too.
func (n *Node) listen(ctx context.Context, addr string) ([]transport.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	acc := acceptor{n}
	for try := 0; ; try++ {
		first, err := n.transports[0].Listen(ctx, addr, acc)
		if err != nil {
			return nil, err
		}
		lns := []transport.Listener{first}
		_, p, _ := net.SplitHostPort(first.Addr().String())
		for _, t := range n.transports[1:] {
			ln, lerr := t.Listen(ctx, net.JoinHostPort(host, p), acc)
			if lerr != nil {
				err = fmt.Errorf("%s on port %s (the %s listener's): %w", t.Name(), p, n.transports[0].Name(), lerr)
				break
			}
			lns = append(lns, ln)
		}
		if err == nil {
			return lns, nil
		}
		for _, ln := range lns {
			ln.Close()
		}
		if port != "0" || try == 15 {
			return nil, err
		}
	}
}

func allLoopback(ifaces []string) bool {
	if len(ifaces) == 0 {
		return false
	}
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil || ifi.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// acceptor takes the connections the node's transports accept.
type acceptor struct{ n *Node }

// HandleConn runs the listener side of the link handshake on c and hands
// the link to its Conn (or the stream c carries to its Conn).
func (a acceptor) HandleConn(c transport.Conn, deadline time.Time) {
	n := a.n
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	l, err := n.acceptLink(ctx, c)
	if err == nil && l == nil {
		return // a stream connection, now handed to its Conn
	}
	if err != nil {
		a.HandleFailure(c.RemoteAddr(), err)
		return
	}
	conn, isNew, err := n.attach(l)
	if err != nil || !isNew {
		return
	}
	// The peer is authenticated: return to the transport, which counts
	// unauthenticated connections until then, while the Conn waits for
	// Accept (AcceptBacklog).
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		select {
		case n.acceptq <- conn:
		case <-n.done:
		}
	}()
}

// HandleFailure reports an incoming connection refused during its
// handshake.
func (a acceptor) HandleFailure(remote net.Addr, err error) {
	if se, ok := errorsAs[*transport.StageError](err); ok {
		err = &HandshakeError{Addr: remote.String(), Incoming: true, Stage: se.Stage, Err: se.Err}
	}
	a.n.cfg.Logger.Debug("nearnet: incoming connection refused", "remote", remote, "err", err)
	if f := a.n.cfg.OnReject; f != nil {
		f(remote, err)
	}
}

// attach gives a handshaken link to the peer's Conn, creating the Conn if
// it is the first link to that peer. isNew reports whether this link made
// the Conn ready (it was created here, or was preparing).
func (n *Node) attach(l *link) (c *Conn, isNew bool, err error) {
	endLink := func(reason string) (*Conn, bool, error) {
		l.sendCloseNow(&CloseError{Code: wire.CloseNormal, Reason: reason})
		l.Fail(ErrClosed)
		return nil, false, ErrClosed
	}
	for {
		n.mu.Lock()
		if n.closed.Load() {
			n.mu.Unlock()
			l.Fail(ErrClosed)
			return nil, false, ErrClosed
		}
		c = n.conns[l.peer.ID]
		if l.resumeFor != nil && c != l.resumeFor {
			n.mu.Unlock()
			return endLink("session ended") // what this link was dialed to resume is gone
		}
		created := c == nil
		if created {
			c = newConn(n, l.peer, StateReady)
			c.peerBoot = l.peerBoot
			c.peerResumes.Store(l.peerBoot != "")
			n.conns[l.peer.ID] = c
		}
		n.mu.Unlock()
		resume := false
		if !created {
			c.mu.Lock()
			resume = n.continuesLocked(l, c)
			over := !resume && c.sessionOverLocked(l)
			if over && !c.state.Terminal() {
				c.failLocked(c.sessionLost(errors.New("the peer no longer has the session (it restarted or gave up on it)")))
			}
			c.mu.Unlock()
			if over {
				n.forget(c)
				if l.resumeFor != nil {
					return endLink("session lost")
				}
				continue // a new session with this link
			}
		}
		becameReady := false
		if c.addLink(l, &becameReady, resume) {
			n.acceptStreams(l)
			n.iceAttached(c, l)
			return c, created || becameReady, nil
		}
		// c ended between the lookup and addLink; forget it and retry.
		n.forget(c)
		if l.resumeFor != nil {
			return endLink("session ended")
		}
	}
}

// continuesLocked reports whether link l resumes c's session: both
// hellos offered it, naming each other's runs. c.mu is held.
func (n *Node) continuesLocked(l *link, c *Conn) bool {
	return l.myResume != nil && l.peerResume != nil && l.peerResume.PeerBoot == n.boot &&
		c.peerBoot != "" && l.peerBoot == c.peerBoot
}

// sessionOverLocked reports whether c cannot take link l, which does not
// resume it: the peer restarted, or c was waiting to resume and the peer
// started afresh instead. c.mu is held.
func (c *Conn) sessionOverLocked(l *link) bool {
	if c.peerBoot == "" {
		return false // preparing: l establishes the session
	}
	return l.peerBoot != c.peerBoot || c.susp.Suspended()
}

// resumeOffer returns the resume offer for l's hello, or nil.
func (n *Node) resumeOffer(l *link) *wire.Resume {
	var c *Conn
	if l.Outgoing() {
		c = l.resumeFor
	} else if l.peerResume != nil && l.peerResume.PeerBoot == n.boot {
		n.mu.Lock()
		c = n.conns[l.peer.ID]
		n.mu.Unlock()
	}
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Terminal() || c.peerBoot == "" || (!l.Outgoing() && c.peerBoot != l.peerBoot) {
		return nil
	}
	return &wire.Resume{PeerBoot: c.peerBoot, Recv: c.rx.Delivered()}
}

// pathChanged returns a channel closed at the next path change.
func (n *Node) pathChanged() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pathCh == nil {
		n.pathCh = make(chan struct{})
	}
	return n.pathCh
}

// addHandle lets streams that name l's handle find c.
func (n *Node) addHandle(l *link, c *Conn) {
	n.smu.Lock()
	n.handles[l.handle] = streamEntry{c: c, key: l.streamKey}
	if n.handleCh != nil {
		close(n.handleCh)
		n.handleCh = nil
	}
	n.smu.Unlock()
}

// handle finds the link a stream open names. The dialer may open a stream
// as soon as it has our hello, which we send before the link joins its
// Conn: so a handle not known yet is waited for, until deadline.
func (n *Node) handle(h string, deadline time.Time) (streamEntry, bool) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		n.smu.Lock()
		e, ok := n.handles[h]
		if ok {
			n.smu.Unlock()
			return e, true
		}
		if n.handleCh == nil {
			n.handleCh = make(chan struct{})
		}
		ch := n.handleCh
		n.smu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return streamEntry{}, false
		case <-n.done:
			return streamEntry{}, false
		}
	}
}

func (n *Node) dropHandles(hs []string) {
	n.smu.Lock()
	for _, h := range hs {
		delete(n.handles, h)
	}
	n.smu.Unlock()
}

// forget removes an ended Conn from the peer table. It may be called with
// c.mu held: n.mu is never held while taking a Conn's lock.
func (n *Node) forget(c *Conn) {
	n.mu.Lock()
	if n.conns[c.peer.ID] == c {
		delete(n.conns, c.peer.ID)
	}
	n.mu.Unlock()
}

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
	n.mu.Lock()
	cs := make([]*Conn, 0, len(n.conns))
	for _, c := range n.conns {
		cs = append(cs, c)
	}
	n.mu.Unlock()
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
			errs = append(errs, fmt.Errorf("%s: %w", c.peer.ID.Short(), err))
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
		return n.connectAddrs(ctx, PeerID{}, "", []string{target}, nil)
	}
	a, err := n.Resolve(ctx, target)
	if err != nil {
		return nil, err
	}
	return n.ConnectAdvert(ctx, a)
}

// ConnectAdvert connects to a peer found by Browse.
func (n *Node) ConnectAdvert(ctx context.Context, a Advert) (*Conn, error) {
	if a.ID.IsZero() {
		return nil, fmt.Errorf("nearnet: %q is not a nearnet peer (no peer ID in its TXT record)", a.Name)
	}
	addrs := make([]string, 0, len(a.Addrs))
	for _, ip := range a.Addrs {
		addrs = append(addrs, net.JoinHostPort(ip.String(), strconv.Itoa(a.Port)))
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("nearnet: %q advertises no address", a.Name)
	}
	offered := a.Transports
	if len(offered) == 0 {
		// No "tr" entry: the transport the service type names.
		offered = []string{"ws"}
		if strings.HasSuffix(a.Service, "._udp") {
			offered = []string{"quic"}
		}
	}
	return n.connectAddrs(ctx, a.ID, a.Name, addrs, offered)
}

// connectAddrs dials addrs in turn, each over the transports of dialOrder
// for what the peer offers, until one works. With a known peer ID
// the Conn exists from the start, in state preparing, and concurrent
// Connects to the same peer wait for it instead of dialing again.
func (n *Node) connectAddrs(ctx context.Context, id PeerID, name string, addrs []string, offered []string) (*Conn, error) {
	order := n.dialOrder(offered)
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: it offers %q, this node dials %v", errNoTransport, offered, n.cfg.Transport)
	}
	var c *Conn
	if !id.IsZero() {
		n.mu.Lock()
		if n.closed.Load() {
			n.mu.Unlock()
			return nil, ErrClosed
		}
		if old := n.conns[id]; old != nil {
			n.mu.Unlock()
			return old.waitReady(ctx)
		}
		c = newConn(n, Peer{ID: id, Name: name}, StatePreparing)
		n.conns[id] = c
		n.mu.Unlock()
	}
	n.startPathMonitor()
	var errs []error
	for attempt := 0; ; attempt++ {
		l, errs1 := n.dialRace(ctx, addrs, order, id)
		if l != nil {
			got, _, err := n.attach(l)
			return got, err
		}
		errs = append(errs[:0], errs1...)
		last := errs[len(errs)-1]
		if i := slices.IndexFunc(errs, isRejection); i >= 0 {
			last = errs[i] // the peer answered: final
		}
		if !n.cfg.RetryConnect || isRejection(last) || ctx.Err() != nil {
			break
		}
		// Waiting: retry with backoff, at once when the network changes
		// or on Restart.
		var retry <-chan struct{}
		if c != nil {
			c.mu.Lock()
			if c.state.Cur().Kind == StateReady {
				c.mu.Unlock()
				return c, nil // an incoming link made it ready meanwhile
			}
			c.setStateLocked(State{Kind: StateWaiting, Err: unwrapSingleRejection(last)})
			c.mu.Unlock()
			retry = c.retry
		}
		t := time.NewTimer(backoff(attempt))
		select {
		case <-t.C:
		case <-retry:
		case <-n.pathChanged():
		case <-ctx.Done():
		case <-n.done:
		}
		t.Stop()
		if ctx.Err() != nil || n.closed.Load() {
			errs = append(errs, ctx.Err())
			break
		}
		if c != nil {
			c.mu.Lock()
			if c.state.Cur().Kind == StateWaiting {
				c.setStateLocked(State{Kind: StatePreparing})
			}
			c.mu.Unlock()
		}
	}
	if n.cfg.RetryConnect && ctx.Err() != nil && len(errs) > 1 {
		errs = errs[:len(errs)-1]
		errs[len(errs)-1] = fmt.Errorf("%w (gave up waiting: %v)", errs[len(errs)-1], ctx.Err())
	}
	err := errs[0]
	if len(errs) > 1 {
		err = errors.Join(errs...)
	}
	err = unwrapSingleRejection(err)
	if c != nil {
		// Unless an incoming link made it ready meanwhile, the attempt failed.
		c.mu.Lock()
		if c.state.Cur().Kind == StatePreparing || c.state.Cur().Kind == StateWaiting {
			c.failLocked(err)
		}
		c.mu.Unlock()
		if s, _ := c.State(); s.Kind == StateReady {
			return c, nil
		}
	}
	return nil, err
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
	lns, disc, pm := n.listeners, n.disc, n.pm
	conns := make([]*Conn, 0, len(n.conns))
	for _, c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	var errs []error
	for _, ln := range lns {
		ln.Close() // stop accepting
	}
	if disc != nil {
		if err := disc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CloseTimeout)
			defer cancel()
			c.shutdown(ctx, wire.CloseGoingAway, "node shutting down")
		}()
	}
	wg.Wait()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.closeStreams()
		}()
	}
	wg.Wait()
	// Every QUIC connection still open ends with code 1001 as its
	// socket closes.
	for _, t := range n.transports {
		t.Close()
	}
	n.closeICE()
	if n.pmStop != nil {
		n.pmStop()
	}
	n.wg.Wait()
	if pm != nil {
		pm.Close()
	}
	// Connections handed to neither Accept nor anyone else.
	for {
		select {
		case c := <-n.acceptq:
			c.Abort()
			continue
		default:
		}
		break
	}
	return errors.Join(errs...)
}
