package nearnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/quict"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// The QUIC transport (PROTOCOL.md, "QUIC").
//
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

// quicCodeAbort is the QUIC application error code of Abort and of a
// failed link: the QUIC form of a TCP reset.
const quicCodeAbort = wire.CloseAbnormal

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
// nearnet code becomes the error a close frame with that code gives.
func peerErr(err error) error {
	if ce, ok := errorsAs[*quict.CloseError](err); ok && ce.Remote && ce.Code <= 4999 {
		return closeErrorFor(int(ce.Code), ce.Reason)
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

// quicConn is a QUIC connection as a [transport.Conn]: the link on its
// control stream, streams as QUIC streams (either side opens them),
// datagrams as DATAGRAM frames.
type quicConn struct {
	*quicLink
	n       *Node
	control *quicControl
	cs      *tls.ConnectionState
}

// newQUICLink makes a link over qc's control stream.
func (n *Node) newQUICLink(qc *quict.Conn, outgoing bool) *link {
	q := &quicLink{qc: qc, refs: 1}
	t := &quicConn{quicLink: q, n: n, control: &quicControl{Stream: qc.Control(), q: q}, cs: n.quicState(qc)}
	return newLink(n, t, nil, outgoing)
}

func (t *quicConn) Control() net.Conn         { return t.control }
func (t *quicConn) TLS() *tls.ConnectionState { return t.cs }
func (t *quicConn) LocalAddr() net.Addr       { return t.qc.LocalAddr() }
func (t *quicConn) RemoteAddr() net.Addr      { return t.qc.RemoteAddr() }

// Close ends a handshake that failed with nothing refused.
func (t *quicConn) Close() error {
	t.closeWith(quicCodeAbort, "handshake failed")
	return nil
}

func (t *quicConn) End(code int, reason string) { t.end(code, reason) }

func (t *quicConn) Refuse(code int, reason string) { t.refuse(code, reason) }

func (t *quicConn) Drain(d time.Duration) {
	t.control.SetReadDeadline(time.Now().Add(d))
	io.Copy(io.Discard, t.control.Stream)
}

// OfferDatagrams offers DATAGRAM frames in the hello's caps.
func (t *quicConn) OfferDatagrams(h *wire.Hello) {
	if !t.n.cfg.DisableDatagrams {
		h.Caps = append(h.Caps, capDatagram)
	}
}

func (t *quicConn) Datagrams(peer *wire.Hello) (transport.Flow, error) {
	if t.n.cfg.DisableDatagrams || !slices.Contains(peer.Caps, capDatagram) {
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

// quicState is the TLS state the handshake checks: nil in SecurityNone,
// where QUIC's TLS still encrypts but authenticates nobody.
func (n *Node) quicState(qc *quict.Conn) *tls.ConnectionState {
	if n.cfg.Security == SecurityNone {
		return nil
	}
	cs := qc.ConnectionState()
	return &cs
}

// quicConfig maps Config onto QUIC's liveness as onto TCP's: a peer
// silent for DropTime is dropped (QUIC's idle timeout, as TCP_USER_TIMEOUT
// on TCP), and a quiet connection sends a PING after KeepAliveIdle (as TCP
// keepalive), beside the link's own WebSocket pings that feed viability.
func (n *Node) quicConfig() *quict.Config {
	idle := min(max(n.cfg.DropTime, 100*time.Millisecond), 24*time.Hour)
	return &quict.Config{
		HandshakeTimeout: min(max(n.cfg.HandshakeTimeout, 10*time.Millisecond), 10*time.Minute),
		MaxIdleTimeout:   idle,
		KeepAlivePeriod:  min(n.cfg.KeepAliveIdle, idle/2),
	}
}

// quicTLS returns the TLS configurations of QUIC: the TCP ones, or in
// SecurityNone (which has no TLS over TCP) ones on the node's identity,
// since QUIC cannot run without TLS.
func (n *Node) quicTLS() (server, client *tls.Config) {
	if n.serverTLS != nil {
		return n.serverTLS, n.clientTLS
	}
	return security.ServerConfig(n.ident, nil), security.ClientConfig(n.ident, nil)
}

// listenQUIC opens the node's UDP socket on addr and its QUIC listener.
func (n *Node) listenQUIC(addr string) (*quict.Transport, *quict.Listener, error) {
	qt, err := quict.ListenUDP(addr)
	if err != nil {
		return nil, nil, err
	}
	server, _ := n.quicTLS()
	ln, err := qt.Listen(server, n.quicConfig())
	if err != nil {
		qt.Close()
		return nil, nil, err
	}
	return qt, ln, nil
}

// dialTransport returns the UDP socket QUIC dials from: the listener's,
// or one opened for dialing on first use.
func (n *Node) dialTransport() (*quict.Transport, error) {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	if n.closed.Load() {
		return nil, ErrClosed
	}
	if n.qt != nil {
		return n.qt, nil
	}
	if n.qdial == nil {
		addr := ":0"
		if allLoopback(n.cfg.Interfaces) {
			addr = "127.0.0.1:0"
		}
		qt, err := quict.ListenUDP(addr)
		if err != nil {
			return nil, err
		}
		n.qdial = qt
	}
	return n.qdial, nil
}

// closeQUIC closes the QUIC listener and sockets (Node.Close): every QUIC
// connection still open ends with code 1001.
func (n *Node) closeQUIC() {
	n.qmu.Lock()
	ln, qt, qd := n.qln, n.qt, n.qdial
	n.qmu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, t := range []*quict.Transport{qt, qd} {
		if t != nil {
			t.Close()
		}
	}
}

func (n *Node) acceptQUICLoop(ln *quict.Listener) {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			select {
			case <-n.done:
			default:
				n.cfg.Logger.Warn("nearnet: QUIC accept failed; the listener stopped", "err", err)
			}
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.handleIncoming(qc.RemoteAddr(), func(ctx context.Context) (*link, error) { return n.acceptQUIC(ctx, qc) })
		}()
	}
}

// acceptQUIC runs the listener side of the handshake on a QUIC connection
// whose control stream has arrived.
func (n *Node) acceptQUIC(ctx context.Context, qc *quict.Conn) (*link, error) {
	l := n.newQUICLink(qc, false)
	l.nc.SetDeadline(n.deadlineFor(ctx))
	if stage, err := n.serverHandshake(ctx, l, l.t.TLS()); err != nil {
		return nil, &HandshakeError{Addr: qc.RemoteAddr().String(), Incoming: true, Stage: stage, Err: err}
	}
	l.nc.SetDeadline(time.Time{})
	return l, nil
}

// quicConnectCap bounds the QUIC handshake when TCP is the other choice
// (TransportAuto): nothing answers for a UDP port nobody listens on (quic-go
// does not act on ICMP), and a LAN peer that listens answers within
// milliseconds, so falling back should not wait the whole HandshakeTimeout.
const quicConnectCap = time.Second

// dialQUIC makes an outgoing link over QUIC to addr, which offers to
// resume c's session (c nil: a fresh session).
func (n *Node) dialQUIC(ctx context.Context, addr string, c *Conn) (*link, error) {
	return n.dialQUICWithin(ctx, addr, c, 0)
}

// dialQUICWithin is dialQUIC with the QUIC handshake bounded by limit too
// (0: by the handshake timeout only).
func (n *Node) dialQUICWithin(ctx context.Context, addr string, c *Conn, limit time.Duration) (*link, error) {
	herr := func(stage string, err error) error {
		if ctx.Err() != nil && !isRejection(err) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return &HandshakeError{Addr: addr, Stage: stage, Err: err}
	}
	qt, err := n.dialTransport()
	if err != nil {
		return nil, herr("quic", err)
	}
	_, client := n.quicTLS()
	dl := n.deadlineFor(ctx)
	if t := time.Now().Add(limit); limit > 0 && t.Before(dl) {
		dl = t
	}
	dctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	qc, err := qt.Dial(dctx, addr, client, n.quicConfig())
	if err != nil {
		return nil, herr("quic", err)
	}
	l := n.newQUICLink(qc, true)
	l.dialed, l.resumeFor = addr, c
	l.nc.SetDeadline(n.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { l.nc.SetDeadline(aLongTimeAgo) })
	defer stop()
	if stage, err := n.clientHandshake(l, addr, l.t.TLS()); err != nil {
		if !isRejection(err) {
			// The listener's refusal may have come as CONNECTION_CLOSE
			// rather than as the close frame before it.
			if perr := peerErr(qc.Err()); isRejection(perr) {
				err = perr
			}
		}
		return nil, herr(stage, err)
	}
	l.nc.SetDeadline(time.Time{})
	return l, nil
}

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
	if tl, ok := errorsAs[*quict.DatagramTooLargeError](err); ok {
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

var errNoTransport = errors.New("nearnet: the peer offers no transport this node dials")

// peerOffers reports whether tr is among the transports of an advert's
// "tr" TXT entry ("ws", "quic").
func peerOffers(offered []string, tr Transport) bool {
	want := "ws"
	if tr == TransportQUIC {
		want = "quic"
	}
	for _, o := range offered {
		if o == want {
			return true
		}
	}
	return false
}

// dialOrder lists the transports Connect tries, in order, for a peer that
// offers the given transports (nil: unknown, as for "host:port").
func (n *Node) dialOrder(offered []string) []Transport {
	var order []Transport
	switch {
	case n.cfg.Transport != TransportAuto:
		order = []Transport{n.cfg.Transport}
	case n.proxy != nil || n.cfg.ProxyFromEnvironment:
		order = []Transport{TransportTCP} // QUIC cannot follow a proxy
	case n.cfg.PreferQUIC:
		order = []Transport{TransportQUIC, TransportTCP}
	default:
		order = []Transport{TransportTCP, TransportQUIC}
	}
	if offered == nil {
		return order
	}
	var out []Transport
	for _, t := range order {
		if peerOffers(offered, t) {
			out = append(out, t)
		}
	}
	return out
}

// udpServiceType is the QUIC service type for a TCP one: "_x._tcp" gives
// "_x._udp" (RFC 6763, section 7: UDP-based protocols use "_udp").
func udpServiceType(tcp string) string { return tcp[:len(tcp)-len("_tcp")] + "_udp" }

var _ net.Conn = (*quicControl)(nil)
