// Package tcp is nearnet's TCP transport (PROTOCOL.md sections 3-5, 12):
// a link is a TCP connection (TLS 1.3 over it unless the security mode is
// none) carrying the WebSocket upgrade and frames; each stream is a TCP
// connection of its own to the same address, opened by the side that
// dialed the link; datagrams are a UDP flow beside the link, on one UDP
// socket per address family (internal/dgram); outgoing connections may go
// through an HTTP CONNECT or SOCKS5 proxy.
package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/proxy"
)

// tcpConn is a link's TCP connection as a [transport.Conn].
type tcpConn struct {
	tr       *Transport
	raw      net.Conn             // the TCP connection
	wc       *wconn               // raw, as TLS (or WebSocket, without TLS) writes to it
	nc       net.Conn             // wc, or TLS over wc
	cs       *tls.ConnectionState // nil without TLS
	outgoing bool
	proxied  bool   // dialed through a proxy: no datagrams
	dialed   string // the address dialed (outgoing)

	udpLocal dgram.SessionID // our datagram session, 0 if none offered; set during the handshake
}

func newTCPConn(tr *Transport, raw net.Conn, wc *wconn, nc net.Conn, cs *tls.ConnectionState, outgoing bool) *tcpConn {
	return &tcpConn{tr: tr, raw: raw, wc: wc, nc: nc, cs: cs, outgoing: outgoing}
}

// WriteThrough is the connection under TLS, for the link's
// write-through; nil where non-blocking writes are not available.
func (t *tcpConn) WriteThrough() transport.WriteThrough {
	if t.wc.nb == nil {
		return nil
	}
	return t.wc
}

// AsStream: a connection that starts with the stream magic is a stream
// connection (its bytes are read through the link's buffer until then).
func (t *tcpConn) AsStream() (transport.Stream, bool) {
	st := &tcpStream{Conn: t.nc, raw: t.raw, cs: t.cs}
	if t.nc == net.Conn(t.wc) {
		st.Conn = t.raw // no TLS: the stream half-closes with the TCP FIN
	} else {
		t.wc.readAhead(t.tr.o.StreamReadAhead)
	}
	return st, true
}

func (t *tcpConn) Control() net.Conn         { return t.nc }
func (t *tcpConn) NetConn() net.Conn         { return t.raw } // the TCP connection
func (t *tcpConn) TLS() *tls.ConnectionState { return t.cs }
func (t *tcpConn) LocalAddr() net.Addr       { return t.raw.LocalAddr() }

func (t *tcpConn) RemoteAddr() net.Addr {
	if t.proxied {
		return dialedAddr(t.dialed) // the socket is connected to the proxy
	}
	return t.raw.RemoteAddr()
}

// Close closes the socket during the handshake, before anything was
// refused: the peer sees the end after what was written (an HTTP error).
func (t *tcpConn) Close() error { return t.raw.Close() }

// End closes the socket after the link: after a clean close the TLS
// close_notify is already out (the link closed Control); anything else is
// an abort, and the peer sees a reset rather than a lingering close.
func (t *tcpConn) End(code int, reason string) {
	if tc, ok := t.raw.(linger); ok && code != wire.CloseNormal {
		tc.SetLinger(0)
	}
	t.raw.Close()
}

// Refuse closes through TLS (close_notify, then FIN) after the close frame.
func (t *tcpConn) Refuse(code int, reason string) { t.nc.Close() }

func (t *tcpConn) Drain(d time.Duration) {
	t.raw.SetReadDeadline(time.Now().Add(d))
	var buf [16 << 10]byte
	for {
		if _, err := t.raw.Read(buf[:]); err != nil {
			return
		}
	}
}

// OfferDatagrams picks this link's datagram session on the node's UDP
// socket for the peer's address family, unless datagrams are off or the
// link goes through a proxy (UDP cannot follow its tunnel).
func (t *tcpConn) OfferDatagrams(h *wire.Hello) {
	if t.tr.o.DisableDatagrams || t.proxied {
		return
	}
	ap, err := netip.ParseAddrPort(t.raw.RemoteAddr().String())
	if err != nil {
		return
	}
	m, err := t.tr.muxFor(ap.Addr())
	if err != nil {
		t.tr.o.Logger.Warn("nearnet: no datagrams on this connection", "err", err)
		return
	}
	t.udpLocal = dgram.NewSessionID()
	h.UDPPort = m.Port()
	h.UDPSession = fmt.Sprintf("%016x", uint64(t.udpLocal))
}

// Datagrams opens the UDP flow both hellos offered, keyed from the TLS
// exporter (PROTOCOL.md, "Datagrams").
func (t *tcpConn) Datagrams(peer *wire.Hello) (transport.Flow, error) {
	if t.udpLocal == 0 || peer.UDPPort == 0 {
		return nil, nil
	}
	remoteSID, err := strconv.ParseUint(peer.UDPSession, 16, 64)
	if err != nil {
		return nil, err
	}
	ap, err := netip.ParseAddrPort(t.raw.RemoteAddr().String())
	if err != nil {
		return nil, err
	}
	m, err := t.tr.muxFor(ap.Addr())
	if err != nil {
		return nil, err
	}
	fc := dgram.FlowConfig{
		LocalSession:  t.udpLocal,
		RemoteSession: dgram.SessionID(remoteSID),
		RemoteAddr:    netip.AddrPortFrom(ap.Addr().Unmap(), uint16(peer.UDPPort)),
	}
	if t.cs != nil {
		dialer, listener := fc.LocalSession, fc.RemoteSession
		if !t.outgoing {
			dialer, listener = listener, dialer
		}
		material, err := t.cs.ExportKeyingMaterial(dgram.ExporterLabel, dgram.ExporterContext(dialer, listener), dgram.ExporterLength)
		if err != nil {
			return nil, err
		}
		if fc.Keys, err = dgram.KeysFromExporter(material, t.outgoing); err != nil {
			return nil, err
		}
	}
	f, err := m.NewFlow(fc)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// OpenStream dials a stream connection to the address the link was
// dialed to (through the same proxy); only the link's dialer can.
func (t *tcpConn) OpenStream(ctx context.Context) (transport.Stream, error) {
	if !t.outgoing {
		return nil, transport.ErrPeerOpens
	}
	raw, _, err := t.tr.dialTCP(ctx, t.dialed)
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(t.tr.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(aLongTimeAgo) })
	defer stop()
	st := &tcpStream{Conn: raw, raw: raw}
	if t.tr.o.Client != nil {
		wc := newWConn(raw)
		wc.readAhead(t.tr.o.StreamReadAhead)
		tc := tls.Client(wc, t.tr.o.Client)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		cs := tc.ConnectionState()
		st.Conn, st.cs = tc, &cs
	}
	return st, nil
}

// AcceptStream: a TCP link's streams arrive at the node's listener.
func (t *tcpConn) AcceptStream(context.Context) (transport.Stream, error) {
	return nil, transport.ErrNoStreams
}

// tcpStream is a stream connection: TLS over TCP, or TCP alone.
type tcpStream struct {
	net.Conn                      // TLS over raw, or raw
	raw      net.Conn             // the TCP connection
	cs       *tls.ConnectionState // nil without TLS
}

func (s *tcpStream) TLS() *tls.ConnectionState { return s.cs }

// Sink is a ring of size bytes written by a goroutine of its own
// (streamwriter.go): crypto/tls makes a write timeout permanent.
func (s *tcpStream) Sink(size int, grace time.Duration, onEnd func()) transport.Sink {
	return newStreamWriter(s.Conn, s.raw, size, grace, onEnd)
}

func (s *tcpStream) Abort() {
	if tc, ok := s.raw.(linger); ok {
		tc.SetLinger(0)
	}
	s.raw.Close()
}

var (
	_ transport.Conn   = (*tcpConn)(nil)
	_ transport.Stream = (*tcpStream)(nil)
)

// Options configure a Transport. The zero value is plain TCP without TLS.
type Options struct {
	Server, Client *tls.Config   // TLS for accepted and dialed connections; nil: none
	Proxy          *proxy.Dialer // every dial goes through it; nil: none
	// ProxyFromEnvironment, when Proxy is nil, takes the proxy of each dial
	// from the environment (proxy.FromEnvironment).
	ProxyFromEnvironment bool

	KeepAlive        net.KeepAliveConfig // TCP keepalive of every connection
	DropTime         time.Duration       // TCP_USER_TIMEOUT where the system has it; 0: unset
	HandshakeTimeout time.Duration       // bounds TLS, and with it the link's handshake
	// MaxPending bounds the accepted connections whose handshake has not
	// finished (not yet authenticated); past it, and when the system is
	// out of descriptors, the oldest of them are closed first. 0: 256.
	MaxPending      int
	StreamReadAhead int // read-ahead of a stream connection under TLS

	DisableDatagrams    bool          // no UDP flows
	DatagramIdleTimeout time.Duration // closes an idle flow
	Loopback            bool          // bind datagram sockets to loopback only
	Logger              *slog.Logger  // nil: discard

	// Net, if not nil, gives every socket of the transport (connections,
	// the listener, the datagram sockets) instead of the host's network
	// stack: a userspace TCP/IP stack. Proxy and ProxyFromEnvironment do
	// not apply to it.
	Net transport.Network
}

// Transport is the TCP transport of a node: its listener, its dialer
// (through a proxy where one is configured), and the UDP sockets that
// carry its links' datagrams. It is safe for concurrent use.
type Transport struct {
	o Options

	mu         sync.Mutex // guards the fields below
	ln         net.Listener
	mux4, mux6 *dgram.Mux // UDP sockets for datagrams, opened on first use
	closed     bool
	pending    map[net.Conn]uint64 // accepted, handshake not finished: accept order
	accepted   uint64              // connections accepted so far
	wg         sync.WaitGroup
}

// defaultMaxPending is Options.MaxPending's default: far more than a LAN's
// honest peers connect at once, far fewer than a process's descriptors.
const defaultMaxPending = 256

// New returns a Transport that has opened nothing yet.
func New(o Options) *Transport {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxPending <= 0 {
		o.MaxPending = defaultMaxPending
	}
	return &Transport{o: o, pending: map[net.Conn]uint64{}}
}

func (t *Transport) Name() string                 { return "ws" }
func (t *Transport) Service(base string) string   { return base }
func (t *Transport) FallbackAfter() time.Duration { return 0 }

// Dialer is the dialer of the transport's own connections (a proxy's
// connection to the proxy included): keepalive and TCP_USER_TIMEOUT set.
func (t *Transport) Dialer() *net.Dialer {
	return &net.Dialer{KeepAliveConfig: t.o.KeepAlive, Control: t.controlSocket}
}

// linger is a TCP connection whose Close may reset it (SetLinger(0)):
// the host's, or Options.Net's where it has the method.
type linger interface{ SetLinger(sec int) error }

// tuneNet gives a connection of Options.Net the keepalive and drop time
// (TCP_USER_TIMEOUT) the host's sockets get, where it has the methods
// (tunnel.Stack's have).
func (t *Transport) tuneNet(c net.Conn) {
	if k, ok := c.(interface {
		SetKeepAliveConfig(net.KeepAliveConfig) error
	}); ok {
		k.SetKeepAliveConfig(t.o.KeepAlive)
	}
	if u, ok := c.(interface{ SetUserTimeout(time.Duration) error }); ok && t.o.DropTime > 0 {
		u.SetUserTimeout(t.o.DropTime)
	}
}

// deadlineFor bounds a handshake by ctx and HandshakeTimeout.
func (t *Transport) deadlineFor(ctx context.Context) time.Time {
	d := time.Now().Add(t.o.HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(d) {
		d = dl
	}
	return d
}

// dialTCP connects to addr, through the configured proxy if one applies.
func (t *Transport) dialTCP(ctx context.Context, addr string) (c net.Conn, proxied bool, err error) {
	if t.o.Net != nil {
		if c, err = t.o.Net.DialContext(ctx, "tcp", addr); err == nil {
			t.tuneNet(c)
		}
		return c, false, err
	}
	d := t.o.Proxy
	if d == nil && t.o.ProxyFromEnvironment {
		if d, err = proxy.FromEnvironment(addr, t.Dialer()); err != nil {
			return nil, false, err
		}
	}
	if d != nil {
		c, err = d.DialContext(ctx, "tcp", addr)
		return c, true, err
	}
	c, err = t.Dialer().DialContext(ctx, "tcp", addr)
	return c, false, err
}

// Dial connects to addr and runs TLS over the connection.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	if err := transport.CheckZone(addr); err != nil {
		return nil, &transport.StageError{Stage: "tcp", Err: err}
	}
	raw, proxied, err := t.dialTCP(ctx, addr)
	if err != nil {
		return nil, &transport.StageError{Stage: "tcp", Err: err}
	}
	raw.SetDeadline(t.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(aLongTimeAgo) })
	defer stop()
	wc := newWConn(raw)
	var nc net.Conn = wc
	var cs *tls.ConnectionState
	if t.o.Client != nil {
		tc := tls.Client(wc, t.o.Client)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &transport.StageError{Stage: "tls", Err: err}
		}
		s := tc.ConnectionState()
		cs, nc = &s, tc
	}
	c := newTCPConn(t, raw, wc, nc, cs, true)
	c.proxied, c.dialed = proxied, addr
	return c, nil
}

// Listen opens the TCP listener on addr.
func (t *Transport) Listen(ctx context.Context, addr string, a transport.Acceptor) (transport.Listener, error) {
	var ln net.Listener
	var err error
	if t.o.Net != nil {
		ln, err = t.o.Net.Listen("tcp", addr)
	} else {
		lc := net.ListenConfig{KeepAliveConfig: t.o.KeepAlive, Control: t.controlSocket}
		ln, err = lc.Listen(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return nil, net.ErrClosed
	}
	t.ln = ln
	t.wg.Add(1)
	t.mu.Unlock()
	go t.acceptLoop(ln, a)
	return ln, nil
}

func (t *Transport) acceptLoop(ln net.Listener, a transport.Acceptor) {
	defer t.wg.Done()
	var delay time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors: unauthenticated connections give
				// theirs back first, the oldest first.
				if t.shedOldest() {
					continue
				}
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			t.o.Logger.Warn("nearnet: accept failed; the listener stopped", "err", err)
			return
		}
		delay = 0
		if t.o.Net != nil {
			t.tuneNet(raw)
		} else {
			t.tuneAccepted(raw)
		}
		if t.addPending(raw) {
			t.shedOldest()
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.donePending(raw)
			t.handshake(raw, a)
		}()
	}
}

// addPending records an accepted connection until its handshake ends; it
// reports whether there are more than MaxPending.
func (t *Transport) addPending(c net.Conn) (over bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.accepted++
	t.pending[c] = t.accepted
	return len(t.pending) > t.o.MaxPending
}

func (t *Transport) donePending(c net.Conn) {
	t.mu.Lock()
	delete(t.pending, c)
	t.mu.Unlock()
}

// shedOldest closes the connection accepted longest ago whose handshake
// has not finished (a slow or silent peer holding a descriptor); it
// reports whether there was one.
func (t *Transport) shedOldest() bool {
	t.mu.Lock()
	var oldest net.Conn
	var first uint64
	for c, n := range t.pending {
		if oldest == nil || n < first {
			oldest, first = c, n
		}
	}
	delete(t.pending, oldest)
	t.mu.Unlock()
	if oldest == nil {
		return false
	}
	t.o.Logger.Debug("nearnet: too many unauthenticated connections; closing the oldest", "remote", oldest.RemoteAddr())
	oldest.Close()
	return true
}

// handshake runs TLS on an accepted connection, within the handshake
// timeout that bounds the link's handshake too.
func (t *Transport) handshake(raw net.Conn, a transport.Acceptor) {
	deadline := time.Now().Add(t.o.HandshakeTimeout)
	raw.SetDeadline(deadline)
	wc := newWConn(raw)
	var nc net.Conn = wc
	var cs *tls.ConnectionState
	if t.o.Server != nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		tc := tls.Server(wc, t.o.Server)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			raw.Close()
			a.HandleFailure(raw.RemoteAddr(), &transport.StageError{Stage: "tls", Err: err})
			return
		}
		s := tc.ConnectionState()
		cs, nc = &s, tc
	}
	a.HandleConn(newTCPConn(t, raw, wc, nc, cs, false), deadline)
}

// muxFor returns the node's UDP socket for the address family of ip,
// opening it on first use.
func (t *Transport) muxFor(ip netip.Addr) (*dgram.Mux, error) {
	v4 := ip.Unmap().Is4()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, net.ErrClosed
	}
	p := &t.mux6
	network, laddr := "udp6", "[::]:0"
	if v4 {
		p, network, laddr = &t.mux4, "udp4", "0.0.0.0:0"
	}
	if *p != nil {
		return *p, nil
	}
	if t.o.Loopback && t.o.Net == nil {
		laddr = "127.0.0.1:0"
		if !v4 {
			laddr = "[::1]:0"
		}
	}
	cfg := &dgram.Config{IdleTimeout: t.o.DatagramIdleTimeout, Logger: t.o.Logger}
	var m *dgram.Mux
	var err error
	if t.o.Net != nil {
		var pc net.PacketConn
		if pc, err = t.o.Net.ListenPacket(network, laddr); err == nil {
			if m, err = dgram.NewMux(network, pc, t.o.Net.MTU(), cfg); err != nil {
				pc.Close()
			}
		}
	} else {
		m, err = dgram.Listen(network, laddr, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("datagram socket: %w", err)
	}
	*p = m
	return m, nil
}

// DatagramSockets returns the UDP sockets opened so far, for tests and
// statistics.
func (t *Transport) DatagramSockets() (v4, v6 *dgram.Mux) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mux4, t.mux6
}

// Close closes the listener, waits for the handshakes in progress, and
// closes the datagram sockets.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	ln := t.ln
	t.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range []*dgram.Mux{t.mux4, t.mux6} {
		if m != nil {
			m.Close()
		}
	}
	return nil
}

// dialedAddr names the peer of a proxied link: the address dialed, not
// the proxy's, which the socket is connected to.
type dialedAddr string

func (a dialedAddr) Network() string { return "tcp" }
func (a dialedAddr) String() string  { return string(a) }

// aLongTimeAgo is a deadline that interrupts a blocked call at once.
var aLongTimeAgo = time.Unix(1, 0)

var _ transport.Transport = (*Transport)(nil)
