// Package mem is an in-memory nearnet transport: connections, streams and
// datagrams between nodes of one process, on a [Network] with no sockets.
// It implements the same seam as TCP and QUIC (internal/transport), so the
// session and link code run on it unchanged, and tests can cut a
// connection, refuse dials or delay nothing at will, deterministically and
// without the kernel. TLS runs over its pipes when Options has it, so
// proofs and exporters are real.
package mem

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Network is a set of in-memory listeners that dial each other. It is
// safe for concurrent use.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*Transport // by address
	conns     map[*conn]struct{}    // open connections, for Cut
	gone      map[string]bool       // partitioned addresses: dials get no answer
	next      int
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{listeners: map[string]*Transport{}, conns: map[*conn]struct{}{}, gone: map[string]bool{}}
}

// Addr is an address on a Network: "mem:N".
type Addr string

func (a Addr) Network() string { return "mem" }
func (a Addr) String() string  { return string(a) }

func (nw *Network) addr() Addr {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.next++
	return Addr("mem:" + strconv.Itoa(nw.next))
}

// ErrCut is what both ends of a cut connection read: a reset, which a
// session resumes from.
var ErrCut = &net.OpError{Op: "read", Net: "mem", Err: syscall.ECONNRESET}

// Cut breaks every open connection to or from addr (all of them if addr
// is empty) as a network failure would: both ends read ErrCut.
func (nw *Network) Cut(addr string) int {
	nw.mu.Lock()
	var cs []*conn
	for c := range nw.conns {
		if addr == "" || c.local.String() == addr || c.remote.String() == addr {
			cs = append(cs, c)
		}
	}
	nw.mu.Unlock()
	for _, c := range cs {
		c.cut()
	}
	return len(cs)
}

// Partition cuts every connection to or from addr and makes dials to it
// get no answer until their ctx ends, as when the host at addr is gone
// from the network (not refusing: silent).
func (nw *Network) Partition(addr string) int {
	nw.mu.Lock()
	nw.gone[addr] = true
	nw.mu.Unlock()
	return nw.Cut(addr)
}

// Options configure a Transport.
type Options struct {
	Server, Client   *tls.Config // TLS over the pipes; nil: none
	HandshakeTimeout time.Duration
	DisableDatagrams bool
}

// Transport is one node's transport on a Network.
type Transport struct {
	nw *Network
	o  Options

	mu       sync.Mutex
	addr     Addr // the listener's, once listening
	acceptor transport.Acceptor
	closed   bool
	wg       sync.WaitGroup
}

// Transport returns a transport for one node on nw.
func (nw *Network) Transport(o Options) *Transport {
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	return &Transport{nw: nw, o: o}
}

func (t *Transport) Name() string                 { return "mem" }
func (t *Transport) Service(base string) string   { return base }
func (t *Transport) FallbackAfter() time.Duration { return 0 }

// Listen listens on a new address of the network; addr is ignored but for
// its port, which must be 0.
func (t *Transport) Listen(_ context.Context, addr string, a transport.Acceptor) (transport.Listener, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port != "0" {
		return nil, fmt.Errorf("mem: listen on %q: only port 0", addr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, net.ErrClosed
	}
	t.addr, t.acceptor = t.nw.addr(), a
	t.nw.mu.Lock()
	t.nw.listeners[string(t.addr)] = t
	t.nw.mu.Unlock()
	return listener{t}, nil
}

type listener struct{ t *Transport }

func (l listener) Addr() net.Addr { return l.t.addr }

func (l listener) Close() error {
	l.t.nw.mu.Lock()
	delete(l.t.nw.listeners, string(l.t.addr))
	l.t.nw.mu.Unlock()
	return nil
}

// Dial connects to the listener at addr and runs TLS if configured; the
// listener's side runs on a goroutine of its own and goes to its
// Acceptor.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	t.nw.mu.Lock()
	peer, gone := t.nw.listeners[addr], t.nw.gone[addr]
	t.nw.mu.Unlock()
	if gone {
		<-ctx.Done()
		return nil, &transport.StageError{Stage: "mem", Err: ctx.Err()}
	}
	if peer == nil {
		return nil, &transport.StageError{Stage: "mem", Err: &net.OpError{Op: "dial", Net: "mem", Err: syscall.ECONNREFUSED}}
	}
	local := t.nw.addr()
	ce, se := newPipe(local, peer.addr)
	client, server := newConn(t, ce, true), newConn(peer, se, false)
	client.peer, server.peer = server, client
	peer.wg.Add(1)
	go func() {
		defer peer.wg.Done()
		deadline := time.Now().Add(peer.o.HandshakeTimeout)
		if err := server.handshake(context.Background(), deadline); err != nil {
			se.Close()
			peer.acceptor.HandleFailure(local, &transport.StageError{Stage: "tls", Err: err})
			return
		}
		peer.acceptor.HandleConn(server, deadline)
	}()
	if err := client.handshake(ctx, time.Time{}); err != nil {
		ce.Close()
		return nil, &transport.StageError{Stage: "tls", Err: err}
	}
	return client, nil
}

// Close stops listening and waits for the handshakes in progress.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.nw.mu.Lock()
	if t.nw.listeners[string(t.addr)] == t {
		delete(t.nw.listeners, string(t.addr))
	}
	t.nw.mu.Unlock()
	t.wg.Wait()
	return nil
}

// conn is one end of an in-memory connection.
type conn struct {
	t             *Transport
	raw           *end
	control       net.Conn // raw, or TLS over it
	cs            *tls.ConnectionState
	outgoing      bool
	local, remote net.Addr
	peer          *conn

	streams chan *stream // opened by the peer
	dgrams  chan []byte  // sent by the peer
	flow    atomic.Pointer[flow]
	done    chan struct{}
	once    sync.Once
}

func newConn(t *Transport, e *end, outgoing bool) *conn {
	c := &conn{t: t, raw: e, control: e, outgoing: outgoing, local: e.local, remote: e.remote,
		streams: make(chan *stream, 64), dgrams: make(chan []byte, 256), done: make(chan struct{})}
	e.onClose = c.ended
	t.nw.mu.Lock()
	t.nw.conns[c] = struct{}{}
	t.nw.mu.Unlock()
	return c
}

func (c *conn) ended() {
	c.once.Do(func() {
		close(c.done)
		c.t.nw.mu.Lock()
		delete(c.t.nw.conns, c)
		c.t.nw.mu.Unlock()
	})
}

func (c *conn) handshake(ctx context.Context, deadline time.Time) error {
	cfg := c.t.o.Client
	if !c.outgoing {
		cfg = c.t.o.Server
	}
	if cfg == nil {
		return nil
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	var tc *tls.Conn
	if c.outgoing {
		tc = tls.Client(c.raw, cfg)
	} else {
		tc = tls.Server(c.raw, cfg)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	cs := tc.ConnectionState()
	c.cs, c.control = &cs, tc
	return nil
}

// cut breaks the connection as the network would: both ends read ErrCut.
func (c *conn) cut() {
	failBoth(c.raw.tx, c.raw.rx, ErrCut)
	c.ended()
	if c.peer != nil {
		c.peer.ended()
	}
}

func (c *conn) Control() net.Conn         { return c.control }
func (c *conn) TLS() *tls.ConnectionState { return c.cs }
func (c *conn) LocalAddr() net.Addr       { return c.local }
func (c *conn) RemoteAddr() net.Addr      { return c.remote }

func (c *conn) Close() error { return c.raw.Close() }

// End: a clean end closes; any other ends at once, and the peer reads the
// code as QUIC's CONNECTION_CLOSE carries it.
func (c *conn) End(code int, reason string) {
	if code == wire.CloseNormal {
		c.raw.Close()
		return
	}
	c.raw.reset(&transport.CloseError{Code: code, Reason: reason})
}

// Refuse half-closes after the close frame and ends once the peer has
// closed too, or after a second.
func (c *conn) Refuse(code int, reason string) {
	c.raw.CloseWrite()
	select {
	case <-c.done:
	case <-time.After(time.Second):
	}
	c.raw.Close()
}

func (c *conn) Drain(d time.Duration) {
	c.raw.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 16<<10)
	for {
		if _, err := c.raw.Read(buf); err != nil {
			return
		}
	}
}

// capDatagram offers datagrams in a hello's caps, as over QUIC.
const capDatagram = "datagram"

func (c *conn) OfferDatagrams(h *wire.Hello) {
	if !c.t.o.DisableDatagrams {
		h.Caps = append(h.Caps, capDatagram)
	}
}

func (c *conn) Datagrams(peer *wire.Hello) (transport.Flow, error) {
	if c.t.o.DisableDatagrams || !slices.Contains(peer.Caps, capDatagram) {
		return nil, nil
	}
	f := &flow{c: c, done: make(chan struct{})}
	c.flow.Store(f)
	return f, nil
}

// OpenStream opens a stream; either side can, as over QUIC.
func (c *conn) OpenStream(ctx context.Context) (transport.Stream, error) {
	select {
	case <-c.done:
		return nil, net.ErrClosed
	default:
	}
	a, b := newPipe(c.local, c.remote)
	select {
	case c.peer.streams <- &stream{end: b}:
		return &stream{end: a}, nil
	case <-c.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *conn) AcceptStream(ctx context.Context) (transport.Stream, error) {
	select {
	case s := <-c.streams:
		return s, nil
	case <-c.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *conn) AsStream() (transport.Stream, bool) { return nil, false }

// stream is an in-memory stream; it shares its connection's TLS state.
type stream struct {
	*end
}

func (s *stream) TLS() *tls.ConnectionState { return nil }
func (s *stream) Abort()                    { s.reset(ErrCut) }

func (s *stream) Sink(_ int, _ time.Duration, onEnd func()) transport.Sink {
	return &sink{s: s, onEnd: onEnd, done: make(chan struct{})}
}

// sink writes straight into the pipe, whose capacity bounds what it holds.
type sink struct {
	s     *stream
	onEnd func()
	once  sync.Once
	done  chan struct{}
}

func (w *sink) Write(p []byte) (int, error) { return w.s.Write(p) }
func (w *sink) CloseWrite() error           { return w.s.CloseWrite() }
func (w *sink) SetDeadline(t time.Time)     { w.s.SetWriteDeadline(t) }
func (w *sink) Done() <-chan struct{}       { return w.done }

func (w *sink) Close(abort bool) {
	if abort {
		w.s.Abort()
	} else {
		w.s.Close()
	}
	w.once.Do(func() {
		close(w.done)
		w.onEnd()
	})
}

// maxDatagram is the datagram size limit of the in-memory transport.
const maxDatagram = 1200

// flow carries datagrams to the peer's queue; a full queue drops them.
type flow struct {
	c                       *conn
	sent, sentBytes         atomic.Uint64
	received, receivedBytes atomic.Uint64
	dropFull, dropTooLarge  atomic.Uint64
	done                    chan struct{}
	once                    sync.Once
}

func (f *flow) Send(p []byte) error {
	select {
	case <-f.done:
		return dgram.ErrClosed
	case <-f.c.done:
		return dgram.ErrClosed
	default:
	}
	if len(p) > maxDatagram {
		f.dropTooLarge.Add(1)
		return &dgram.TooLargeError{Size: len(p), Max: maxDatagram}
	}
	select {
	case f.c.peer.dgrams <- append([]byte(nil), p...):
		f.sent.Add(1)
		f.sentBytes.Add(uint64(len(p)))
	default:
		f.dropFull.Add(1)
	}
	return nil
}

func (f *flow) Receive(ctx context.Context) ([]byte, error) {
	select {
	case p := <-f.c.dgrams:
		f.received.Add(1)
		f.receivedBytes.Add(uint64(len(p)))
		return p, nil
	case <-f.done:
		return nil, dgram.ErrClosed
	case <-f.c.done:
		return nil, dgram.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *flow) MaxSize() int { return maxDatagram }

func (f *flow) Stats() dgram.Stats {
	var s dgram.Stats
	s.Sent, s.SentBytes = f.sent.Load(), f.sentBytes.Load()
	s.Received, s.ReceivedBytes = f.received.Load(), f.receivedBytes.Load()
	s.Dropped.QueueFull, s.Dropped.TooLarge = f.dropFull.Load(), f.dropTooLarge.Load()
	return s
}

func (f *flow) Done() <-chan struct{} { return f.done }

func (f *flow) Close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

var (
	_ transport.Transport = (*Transport)(nil)
	_ transport.Conn      = (*conn)(nil)
	_ transport.Stream    = (*stream)(nil)
	_                     = errors.New
)
