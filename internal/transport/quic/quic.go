// Package quic is nearnet's QUIC transport (PROTOCOL.md, "QUIC"), on
// quic-go through internal/quict.
package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/quict"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// A link over QUIC is the same link as over TCP: its transport is the QUIC
// connection's control stream, which carries exactly the bytes a TCP link
// carries after TLS (the WebSocket upgrade, the hellos, frames), so the
// handshake, messages, close frames and duplicate resolution are shared
// code. QUIC adds what TCP lacks: streams are QUIC streams of the same
// connection (either side opens them), and datagrams are DATAGRAM frames
// (RFC 9221) instead of a UDP flow beside the link.
//
// One quict.Transport (one UDP socket) per node serves the QUIC listener
// and every QUIC dial.

// capDatagram, in a hello's caps over QUIC, offers DATAGRAM frames.
const capDatagram = "datagram"

// quicLinger is how long a side keeps a QUIC connection open after its
// link and all its streams have ended, so that the last acknowledgements
// cross before CONNECTION_CLOSE (which drops whatever is still in flight);
// the peer closing first ends it sooner.
const quicLinger = time.Second

// codeAbort is the QUIC application error code of Abort and of a failed
// link: the QUIC form of a TCP reset.
const codeAbort = wire.CloseAbnormal

// quicLink is the QUIC connection under a link. The connection stays open
// while the link or any stream on it is: streams outlive a graceful close
// of their Conn, as they do over TCP, where each is a connection of its own.
type quicLink struct {
	qc *quict.Conn

	mu       sync.Mutex // guards the fields below
	refs     int        // the link until it ends gracefully, plus each open stream
	linkDone bool       // the link's reference is released
	closed   bool
}

// acquire takes a reference for a stream; false once the connection closes.
func (q *quicLink) acquire() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.qc.Err() != nil {
		return false
	}
	q.refs++
	return true
}

// release drops a reference; the last one closes the connection normally
// after quicLinger.
func (q *quicLink) release() {
	q.mu.Lock()
	q.refs--
	last := q.refs == 0 && !q.closed
	q.mu.Unlock()
	if last {
		time.AfterFunc(quicLinger, func() {
			q.mu.Lock()
			idle := q.refs == 0
			q.mu.Unlock()
			if idle {
				q.closeWith(wire.CloseNormal, "")
			}
		})
	}
}

// end ends the link, once: a clean end releases the link's reference
// (streams keep the connection); anything else closes the connection with
// code, the one a close frame would carry (link.endCodeFor), so that the
// peer learns the same whether the close frame or CONNECTION_CLOSE
// arrives first.
func (q *quicLink) end(code int, reason string) {
	q.mu.Lock()
	done := q.linkDone
	q.linkDone = true
	q.mu.Unlock()
	switch {
	case done:
	case code == wire.CloseNormal:
		q.release()
	default:
		q.closeWith(code, reason)
	}
}

// closeWith closes the QUIC connection at once with a nearnet close code.
func (q *quicLink) closeWith(code int, reason string) {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.qc.CloseWithError(uint64(code), reason)
}

// refuse ends a handshake this side refused, after its close frame: the
// control stream's FIN follows the frame, and the connection closes with
// the same code once the peer has closed it (having read the frame) or
// after a second. Closing at once could drop the frame in flight; and a
// listener learns of a connection only from its control stream's bytes.
func (q *quicLink) refuse(code int, reason string) {
	q.qc.Control().CloseWrite()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-q.qc.Done():
	case <-t.C:
	}
	q.closeWith(code, reason)
}

// peerErr maps an error from the QUIC connection: the peer's close with a
// nearnet code becomes a *transport.CloseError, which the session treats
// as a close frame with that code.
func peerErr(err error) error {
	var ce *quict.CloseError
	if errors.As(err, &ce) && ce.Remote && ce.Code <= 4999 {
		return &transport.CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return err
}

// quicControl is a QUIC link's control stream as the link's byte stream.
// Its Close ends the link gracefully: a FIN after the close frame, and the
// peer's FIN awaited (within the deadline link.finish sets), so that both
// close frames have crossed.
type quicControl struct {
	*quict.Stream
	q *quicLink
}

func (c *quicControl) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	if err != nil {
		err = peerErr(err)
	}
	return n, err
}

func (c *quicControl) Close() error {
	c.Stream.CloseWrite()
	io.Copy(io.Discard, c.Stream) // until the peer's FIN, an error or the deadline
	c.q.end(wire.CloseNormal, "")
	return nil
}

// Options configure a Transport.
type Options struct {
	// Server and Client are the TLS configurations; QUIC cannot run
	// without TLS.
	Server, Client *tls.Config
	// Authenticated says whether the TLS session authenticates the peer:
	// without it (security mode none) Conn.TLS is nil, though QUIC still
	// encrypts.
	Authenticated bool

	HandshakeTimeout time.Duration // QUIC's handshake, and the link's after it
	DropTime         time.Duration // QUIC's idle timeout
	KeepAliveIdle    time.Duration // a quiet connection PINGs after this

	DisableDatagrams bool
	Loopback         bool         // a socket for dialing binds to loopback only
	Logger           *slog.Logger // nil: discard

	// Net, if not nil, gives the transport's UDP socket instead of the
	// host's network stack: a userspace TCP/IP stack.
	Net transport.Network
}

// Transport is the QUIC transport of a node: one UDP socket serves its
// listener and every dial (so peers see one port), or, before or without
// Listen, a socket opened for dialing. It is safe for concurrent use.
type Transport struct {
	o Options

	mu     sync.Mutex // guards the fields below
	qt     *quict.Transport
	ln     *quict.Listener
	qdial  *quict.Transport
	over   map[*quict.Transport]struct{} // on callers' packet paths (over.go)
	closed bool
	cancel context.CancelFunc // stops the accept loop
	wg     sync.WaitGroup
}

// New returns a Transport that has opened nothing yet.
func New(o Options) *Transport {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Transport{o: o}
}

func (t *Transport) Name() string { return "quic" }

// Service is the "_udp" form of base (RFC 6763, section 7: UDP-based
// protocols use "_udp"): "_x._tcp" gives "_x._udp".
func (t *Transport) Service(base string) string { return base[:len(base)-len("_tcp")] + "_udp" }

// FallbackAfter: nothing answers for a UDP port nobody listens on
// (quic-go does not act on ICMP), and a LAN peer that listens answers
// within milliseconds, so falling back should not wait the whole
// HandshakeTimeout.
func (t *Transport) FallbackAfter() time.Duration { return time.Second }

// config maps the options onto QUIC's liveness as onto TCP's: a peer silent for
// DropTime is dropped (QUIC's idle timeout, as TCP_USER_TIMEOUT on TCP),
// and a quiet connection sends a PING after KeepAliveIdle (as TCP
// keepalive), beside the link's own WebSocket pings that feed viability.
func (t *Transport) config() *quict.Config {
	idle := min(max(t.o.DropTime, 100*time.Millisecond), 24*time.Hour)
	return &quict.Config{
		HandshakeTimeout: min(max(t.o.HandshakeTimeout, 10*time.Millisecond), 10*time.Minute),
		MaxIdleTimeout:   idle,
		KeepAlivePeriod:  min(t.o.KeepAliveIdle, idle/2),
	}
}

// Listen opens the node's UDP socket on addr and its QUIC listener.
func (t *Transport) Listen(_ context.Context, addr string, a transport.Acceptor) (transport.Listener, error) {
	qt, err := t.listenUDP(addr)
	if err != nil {
		return nil, err
	}
	ln, err := qt.Listen(t.o.Server, t.config())
	if err != nil {
		qt.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		ln.Close()
		qt.Close()
		return nil, net.ErrClosed
	}
	old := t.qt // a listener closed before (Node.listen's retries)
	t.qt, t.ln, t.cancel = qt, ln, cancel
	t.wg.Add(1)
	t.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go t.acceptLoop(ctx, ln, a)
	return ln, nil
}

func (t *Transport) acceptLoop(ctx context.Context, ln *quict.Listener, a transport.Acceptor) {
	defer t.wg.Done()
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.o.Logger.Warn("nearnet: QUIC accept failed; the listener stopped", "err", err)
			}
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			// The QUIC handshake is done and the control stream arrived.
			a.HandleConn(t.conn(qc), time.Now().Add(t.o.HandshakeTimeout))
		}()
	}
}

// dialSocket returns the UDP socket QUIC dials from: the listener's, or
// one opened for dialing on first use.
func (t *Transport) dialSocket() (*quict.Transport, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, net.ErrClosed
	}
	if t.qt != nil {
		return t.qt, nil
	}
	if t.qdial == nil {
		addr := ":0"
		if t.o.Loopback && t.o.Net == nil {
			addr = "127.0.0.1:0"
		}
		qt, err := t.listenUDP(addr)
		if err != nil {
			return nil, err
		}
		t.qdial = qt
	}
	return t.qdial, nil
}

// listenUDP opens the transport's UDP socket on addr: the host's, or
// Options.Net's.
func (t *Transport) listenUDP(addr string) (*quict.Transport, error) {
	if t.o.Net == nil {
		return quict.ListenUDP(addr)
	}
	pc, err := t.o.Net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return quict.NewTransport(pc), nil
}

func (t *Transport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	if err := transport.CheckZone(addr); err != nil {
		return nil, &transport.StageError{Stage: "quic", Err: err}
	}
	qt, err := t.dialSocket()
	if err != nil {
		return nil, &transport.StageError{Stage: "quic", Err: err}
	}
	qc, err := qt.Dial(ctx, addr, t.o.Client, t.config())
	if err != nil {
		return nil, &transport.StageError{Stage: "quic", Err: err}
	}
	return t.conn(qc), nil
}

// Close closes the listener and the sockets: every QUIC connection still
// open ends with code 1001.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	ln, qt, qd, cancel := t.ln, t.qt, t.qdial, t.cancel
	t.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if ln != nil {
		ln.Close()
	}
	for _, s := range []*quict.Transport{qt, qd} {
		if s != nil {
			s.Close()
		}
	}
	t.closeOver()
	t.wg.Wait()
	return nil
}

// quicConn is a QUIC connection as a [transport.Conn]: the link on its
// control stream, streams as QUIC streams (either side opens them),
// datagrams as DATAGRAM frames.
type quicConn struct {
	*quicLink
	tr      *Transport
	control *quicControl
	cs      *tls.ConnectionState
}

// conn makes the transport.Conn of qc, whose TLS state the handshake
// checks: none unless Options.Authenticated.
func (t *Transport) conn(qc *quict.Conn) *quicConn {
	q := &quicLink{qc: qc, refs: 1}
	c := &quicConn{quicLink: q, tr: t, control: &quicControl{Stream: qc.Control(), q: q}}
	if t.o.Authenticated {
		cs := qc.ConnectionState()
		c.cs = &cs
	}
	return c
}

func (t *quicConn) Control() net.Conn         { return t.control }
func (t *quicConn) TLS() *tls.ConnectionState { return t.cs }

// RTT is QUIC's smoothed round-trip time (root ice.go reports it).
func (t *quicConn) RTT() time.Duration   { return t.qc.RTT() }
func (t *quicConn) LocalAddr() net.Addr  { return t.qc.LocalAddr() }
func (t *quicConn) RemoteAddr() net.Addr { return t.qc.RemoteAddr() }

// Close ends a handshake that failed with nothing refused.
func (t *quicConn) Close() error {
	t.closeWith(codeAbort, "handshake failed")
	return nil
}

func (t *quicConn) End(code int, reason string) { t.end(code, reason) }

func (t *quicConn) Refuse(code int, reason string) { t.refuse(code, reason) }

func (t *quicConn) Drain(d time.Duration) {
	t.control.SetReadDeadline(time.Now().Add(d))
	io.Copy(io.Discard, t.control.Stream)
}

// Err is why the connection ended (a *transport.CloseError when the peer
// closed it with a nearnet code), or nil while it is open: a refusal may
// come as CONNECTION_CLOSE rather than as the close frame before it.
func (t *quicConn) Err() error { return peerErr(t.qc.Err()) }

// OfferDatagrams offers DATAGRAM frames in the hello's caps.
func (t *quicConn) OfferDatagrams(h *wire.Hello) {
	if !t.tr.o.DisableDatagrams {
		h.Caps = append(h.Caps, capDatagram)
	}
}

func (t *quicConn) Datagrams(peer *wire.Hello) (transport.Flow, error) {
	if t.tr.o.DisableDatagrams || !slices.Contains(peer.Caps, capDatagram) {
		return nil, nil
	}
	return newQUICFlow(t.qc), nil
}

// OpenStream opens a QUIC stream, holding a reference on the connection
// until the stream ends.
func (t *quicConn) OpenStream(ctx context.Context) (transport.Stream, error) {
	if !t.acquire() {
		return nil, net.ErrClosed
	}
	qs, err := t.qc.OpenStream(ctx)
	if err != nil {
		t.release()
		return nil, peerErr(err)
	}
	return &quicStream{Stream: qs, q: t.quicLink}, nil
}

func (t *quicConn) AcceptStream(ctx context.Context) (transport.Stream, error) {
	qs, err := t.qc.AcceptStream(t.qc.Context())
	if err != nil {
		return nil, err
	}
	if !t.acquire() {
		qs.Reset(quict.StreamCodeClosed)
		return nil, net.ErrClosed
	}
	return &quicStream{Stream: qs, q: t.quicLink}, nil
}

// AsStream: QUIC streams arrive on their connection, never as a control
// stream.
func (t *quicConn) AsStream() (transport.Stream, bool) { return nil, false }

// quicStream is a QUIC stream of a link's connection, holding a reference
// on the connection until it is closed or reset.
type quicStream struct {
	*quict.Stream
	q    *quicLink
	once sync.Once
}

func (s *quicStream) Close() error {
	err := s.Stream.Close()
	s.once.Do(s.q.release)
	return err
}

func (s *quicStream) reset() {
	s.Stream.Reset(quict.StreamCodeClosed)
	s.once.Do(s.q.release)
}

// TLS is nil: the stream shares its connection's TLS session.
func (s *quicStream) TLS() *tls.ConnectionState { return nil }

func (s *quicStream) Abort() { s.reset() }

// Sink writes straight to quic-go, whose send window bounds what a stream
// holds and whose write deadline leaves the stream usable.
func (s *quicStream) Sink(_ int, _ time.Duration, onEnd func()) transport.Sink {
	return newQUICSink(s, onEnd)
}

// quicSink is a QUIC stream's write side: writes go straight to quic-go,
// whose send window is the bound on what a stream holds, and whose write
// deadline leaves the stream usable after it fires.
type quicSink struct {
	s     *quicStream
	onEnd func()
	once  sync.Once
	done  chan struct{}
}

func newQUICSink(s *quicStream, onEnd func()) *quicSink {
	return &quicSink{s: s, onEnd: onEnd, done: make(chan struct{})}
}

func (w *quicSink) Write(p []byte) (int, error) { return w.s.Write(p) }
func (w *quicSink) CloseWrite() error           { return w.s.CloseWrite() }
func (w *quicSink) SetDeadline(t time.Time)     { w.s.SetWriteDeadline(t) }
func (w *quicSink) Done() <-chan struct{}       { return w.done }

func (w *quicSink) Close(abort bool) {
	if abort {
		w.s.reset()
	} else {
		w.s.Close()
	}
	w.once.Do(func() {
		close(w.done)
		w.onEnd()
	})
}

// quicFlow carries a link's datagrams in QUIC DATAGRAM frames.
type quicFlow struct {
	qc                          *quict.Conn
	sent, sentBytes             atomic.Uint64
	received, receivedBytes     atomic.Uint64
	dropTooLarge, dropSendError atomic.Uint64
	done                        chan struct{}
	closeOnce                   sync.Once
}

func newQUICFlow(qc *quict.Conn) *quicFlow {
	f := &quicFlow{qc: qc, done: make(chan struct{})}
	context.AfterFunc(qc.Context(), func() { f.Close() })
	return f
}

func (f *quicFlow) Send(p []byte) error {
	select {
	case <-f.done:
		return dgram.ErrClosed
	default:
	}
	err := f.qc.SendDatagram(p)
	var tl *quict.DatagramTooLargeError
	if errors.As(err, &tl) {
		f.dropTooLarge.Add(1)
		return &dgram.TooLargeError{Size: len(p), Max: tl.Max}
	}
	if err != nil {
		f.dropSendError.Add(1)
		if f.qc.Err() != nil {
			return dgram.ErrClosed
		}
		return err
	}
	f.sent.Add(1)
	f.sentBytes.Add(uint64(len(p)))
	return nil
}

func (f *quicFlow) Receive(ctx context.Context) ([]byte, error) {
	p, err := f.qc.ReceiveDatagram(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, dgram.ErrClosed
	}
	f.received.Add(1)
	f.receivedBytes.Add(uint64(len(p)))
	return p, nil
}

func (f *quicFlow) MaxSize() int { return f.qc.MaxDatagramSize() }

func (f *quicFlow) Stats() dgram.Stats {
	var s dgram.Stats
	s.Sent, s.SentBytes = f.sent.Load(), f.sentBytes.Load()
	s.Received, s.ReceivedBytes = f.received.Load(), f.receivedBytes.Load()
	s.Dropped.TooLarge, s.Dropped.SendError = f.dropTooLarge.Load(), f.dropSendError.Load()
	return s
}

func (f *quicFlow) Done() <-chan struct{} { return f.done }

// Close ends the flow; the QUIC connection goes on for the link's streams.
func (f *quicFlow) Close() error {
	f.closeOnce.Do(func() { close(f.done) })
	return nil
}
