package nearnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"time"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/stream"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Stream is a reliable, ordered, flow-controlled byte stream to a peer,
// opened with [Conn.OpenStream] and taken with [Conn.AcceptStream]: Multipeer
// Connectivity's startStream, with flow control. It is a [net.Conn] that
// can also half-close ([Stream.CloseWrite]).
//
// Each stream is a TCP connection of its own to the peer (TLS 1.3 unless
// the security mode is none), tied to the [Conn] by a proof over both TLS
// sessions (PROTOCOL.md, "Streams"), so bulk bytes pay no WebSocket framing
// and one stream never waits behind another or behind messages. Flow
// control is TCP's: a Write blocks while Config.StreamBuffer bytes and the
// socket buffers are full, that is while the peer does not read.
//
// A stream belongs to the application once opened or accepted: closing the
// Conn gracefully leaves it to finish; [Conn.Abort], a failed Conn and
// [Node.Close] end it.
type Stream struct {
	c *Conn
	s *stream.Stream // the stream itself (internal/stream)
}

// ErrStreamIdle is the error of a stream ended by its idle timeout
// ([Stream.SetIdleTimeout]). It is a timeout: errors.As to net.Error says
// so.
var ErrStreamIdle error = stream.ErrIdle

func (c *Conn) newStream(id uint64, name string, meta map[string]string, kind string, st transport.Stream) *Stream {
	s := &Stream{c: c}
	s.s = stream.New(id, name, meta, kind, st, c.n.cfg.StreamBuffer, c.n.cfg.CloseTimeout, func() { c.streams.Drop(s) })
	return s
}

// Name returns the name the opener gave the stream.
func (s *Stream) Name() string { return s.s.Name }

// Meta returns the metadata the opener gave the stream (nil if none).
// The map must not be modified.
func (s *Stream) Meta() map[string]string { return s.s.Meta }

// Conn returns the connection the stream belongs to.
func (s *Stream) Conn() *Conn { return s.c }

// Read reads bytes the peer wrote. It returns io.EOF once the peer has
// half-closed or closed the stream and everything before was read.
func (s *Stream) Read(p []byte) (int, error) { return s.s.Read(p) }

// Write queues p for the peer; see Config.StreamBuffer. Bytes Write
// accepted are sent even if the stream is closed right after.
func (s *Stream) Write(p []byte) (int, error) { return s.s.Write(p) }

// CloseWrite half-closes the stream: the peer reads EOF after the bytes
// already written, and this side can still read. Writes after it fail.
func (s *Stream) CloseWrite() error { return s.s.CloseWrite() }

// Close closes the stream: pending Reads and Writes return at once; bytes
// already written are still sent, for up to Config.CloseTimeout, then the
// peer reads EOF.
func (s *Stream) Close() error { return s.s.Close() }

// Abort closes the stream at once, dropping bytes not yet sent; the peer
// sees the connection reset.
func (s *Stream) Abort() { s.s.Abort() }

// LocalAddr returns the local address of the stream's connection.
func (s *Stream) LocalAddr() net.Addr { return s.s.LocalAddr() }

// RemoteAddr returns the peer's address of the stream's connection.
func (s *Stream) RemoteAddr() net.Addr { return s.s.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error { return s.s.SetDeadline(t) }

// SetReadDeadline sets the deadline for pending and future Reads.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.s.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for pending and future Writes. A
// Write that times out has sent what it reports; the stream goes on.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// SetIdleTimeout ends the stream when no byte has been read or written
// for d: pending and later Reads and Writes fail with an error matching
// [ErrStreamIdle], and the peer sees the stream reset (over QUIC with
// the stream's reset code, over TCP as a connection reset). It bounds what
// a peer that opened a stream and fell silent can hold (a descriptor, a
// name the application reserved for it). d <= 0 turns it off. Calling it
// again restarts the count.
func (s *Stream) SetIdleTimeout(d time.Duration) { s.s.SetIdleTimeout(d) }

// StreamError reports a stream the peer refused or that could not be set
// up; the Conn itself is unaffected.
type StreamError struct {
	Name string
	Err  error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("nearnet: stream %q: %v", e.Name, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// OpenStream opens a stream named name to the peer, which takes it with
// AcceptStream. It returns once the peer's node has taken the stream into
// its backlog (Config.StreamBacklog); it does not wait for the
// application there to accept it.
func (c *Conn) OpenStream(ctx context.Context, name string) (*Stream, error) {
	return c.openStream(ctx, name, nil, wire.StreamKindBytes)
}

// OpenStreamMeta is OpenStream with metadata the acceptor sees with the
// name, before it reads anything: at most 64 keys, 4 KiB in all.
func (c *Conn) OpenStreamMeta(ctx context.Context, name string, meta map[string]string) (*Stream, error) {
	return c.openStream(ctx, name, maps.Clone(meta), wire.StreamKindBytes)
}

// AcceptStream returns the next stream the peer opened.
func (c *Conn) AcceptStream(ctx context.Context) (*Stream, error) {
	select {
	case s := <-c.streamq:
		c.streams.Take(s, wire.StreamKindBytes)
		return s, nil
	default:
	}
	select {
	case s := <-c.streamq:
		c.streams.Take(s, wire.StreamKindBytes)
		return s, nil
	case <-c.s.Ended():
		return nil, c.s.EndErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Conn) openStream(ctx context.Context, name string, meta map[string]string, kind string) (*Stream, error) {
	serr := func(err error) error { return &StreamError{Name: name, Err: err} }
	if err := wire.CheckStream(name, meta, kind); err != nil {
		return nil, serr(err)
	}
	l, err := c.s.StreamPath(ctx)
	if err != nil {
		return nil, serr(err)
	}
	id := c.streams.NextID()
	s, err := c.dialStream(ctx, l, &wire.StreamOpen{ID: id, Name: name, Meta: meta, Kind: kind})
	if !errors.Is(err, transport.ErrPeerOpens) {
		if err != nil {
			return nil, serr(err)
		}
		return s, nil
	}
	// Only the peer opens streams of this link's connection (we are a TCP
	// link's listener): ask it to.
	req, err := wire.AppendStreamRequest(nil, &wire.StreamRequest{ID: id, Name: name, Meta: meta, Kind: kind})
	if err != nil {
		return nil, serr(err)
	}
	ch := make(chan stream.Result[*Stream], 1)
	c.streams.Request(id, &stream.Pending[*Stream]{Name: name, Meta: meta, Kind: kind, Ch: ch})
	defer c.streams.Answered(id)
	if !l.Enqueue(wire.OpBinary, 0, req) {
		return nil, serr(errors.New("the connection is closing"))
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, serr(r.Err)
		}
		return r.S, nil
	case <-c.s.Ended():
		return nil, serr(c.s.EndErr())
	case <-ctx.Done():
		// The dialer's stream may still come; acceptStream finds no
		// pending entry then and refuses it.
		return nil, serr(ctx.Err())
	}
}

// dialStream opens a stream to the peer of l over l's transport and runs
// its handshake. It returns transport.ErrPeerOpens where only the peer can
// open streams of l's connection.
func (c *Conn) dialStream(ctx context.Context, l *link, o *wire.StreamOpen) (*Stream, error) {
	st, err := l.T.OpenStream(ctx)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			err = c.s.EndErr()
		}
		return nil, fromTransport(err)
	}
	ok := false
	defer func() {
		if !ok {
			st.Abort()
		}
	}()
	st.SetDeadline(c.n.dialer.Deadline(ctx))
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(aLongTimeAgo) })
	defer stop()
	cs := st.TLS()
	if cs != nil && session.CertFingerprint(cs) != l.Peer.Fingerprint {
		return nil, errors.New("the stream's TLS peer is not the connection's peer")
	}
	exp, err := stream.Exporter(cs)
	if err != nil {
		return nil, err
	}
	if err := stream.Open(ctx, st, &l.StreamKey, l.Handle, exp, o); err != nil {
		if r, ok := errorsAs[*stream.RefusedError](err); ok {
			err = &RejectedError{Code: 0, Reason: r.Reason}
		}
		return nil, err
	}
	s := c.newStream(o.ID, o.Name, o.Meta, o.Kind, st)
	ok = true
	if !stop() {
		s.Abort()
		return nil, ctx.Err()
	}
	// Opened by the application (taken), or for its AcceptStream (a reply).
	if !c.streams.Keep(s, !o.Reply, c.s.Terminal) {
		s.Abort()
		return nil, c.s.EndErr()
	}
	return s, nil
}

// abortStreams ends every stream of c at once, queued ones included.
func (c *Conn) abortStreams() {
	for _, s := range c.streams.Where(func(bool) bool { return true }) {
		s.Abort()
	}
}

// endStreams runs once the Conn has ended: streams the application has
// not taken are aborted, and all of them if the Conn failed or was
// aborted.
func (c *Conn) endStreams() {
	for _, s := range c.streams.Where(func(taken bool) bool { return !taken || c.aborted.Load() }) {
		s.Abort()
	}
}

// closeStreams closes every stream of c gracefully (Node.Close).
func (c *Conn) closeStreams() {
	for _, s := range c.streams.Where(func(bool) bool { return true }) {
		s.Close()
		<-s.s.Done()
	}
}

// streamEntry ties a link handle to its Conn and key for incoming streams.
type streamEntry struct {
	c   *Conn
	key [32]byte
}

// acceptStream handles an incoming stream connection whose first bytes
// were the stream magic. br holds what was read from nc.
func (n *Node) acceptStream(st transport.Stream, br *bufio.Reader) error {
	o, err := stream.ReadOpen(st, br)
	if err != nil {
		return err
	}
	e, found := n.handles.Find(o.Handle, time.Now().Add(min(n.cfg.HandshakeTimeout, 2*time.Second)), n.done)
	if !found {
		return stream.Refuse(st, "no such connection (unknown handle)")
	}
	c := e.c
	cs := st.TLS()
	if cs != nil && session.CertFingerprint(cs) != c.Peer().Fingerprint {
		return stream.Refuse(st, "the stream's TLS peer is not the connection's peer")
	}
	exp, err := stream.Exporter(cs)
	if err != nil {
		return stream.Refuse(st, err.Error())
	}
	if !stream.CheckProof(&e.key, exp, o) {
		return stream.Refuse(st, "stream proof does not match")
	}
	ps, refusal := c.streams.Admit(o, c.s.Terminal)
	if refusal != "" {
		return stream.Refuse(st, refusal)
	}
	if ps != nil {
		o.Name, o.Meta, o.Kind = ps.Name, ps.Meta, ps.Kind
	}
	err = stream.Accept(st, &e.key, exp, o)
	s := c.newStream(o.ID, o.Name, o.Meta, o.Kind, st)
	if err != nil || !c.streams.Keep(s, false, c.s.Terminal) {
		s.Abort()
		if !o.Reply {
			c.streams.Unreserve(o.Kind)
		}
		if ps != nil {
			ps.Ch <- stream.Result[*Stream]{Err: errors.New("the stream connection failed")}
		}
		return err
	}
	switch {
	case ps != nil:
		ps.Ch <- stream.Result[*Stream]{S: s}
	case o.Kind == wire.StreamKindResource:
		c.offerResource(s)
	default:
		c.streamq <- s // never blocks: a place was reserved
	}
	return nil
}

// acceptStreams takes, in the background, the streams the peer opens on
// l's transport connection, where streams arrive on the connection itself
// (QUIC); TCP stream connections arrive at the listener instead.
func (n *Node) acceptStreams(l *link) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			// Ends with the connection (or at once: transport.ErrNoStreams).
			st, err := l.T.AcceptStream(context.Background())
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				st.SetDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
				if err := n.acceptStream(st, bufio.NewReader(st)); err != nil {
					n.cfg.Logger.Debug("nearnet: incoming stream refused", "peer", PeerID(l.Peer.ID).Short(), "err", err)
				}
			}()
		}
	}()
}

// answerStreamRequest runs on the link's dialer when the listener asked
// for a stream: it opens it and queues it for AcceptStream (or as a
// resource offer), or tells the listener why it could not.
func (c *Conn) answerStreamRequest(l *link, q *wire.StreamRequest) {
	refuse := func(err error) {
		l.Enqueue(wire.OpBinary, 0, wire.AppendStreamRefused(nil, &wire.StreamRefused{ID: q.ID, Error: err.Error()}))
	}
	if !c.streams.Reserve(q.Kind) {
		refuse(stream.ErrBacklogFull)
		return
	}
	o := &wire.StreamOpen{ID: q.ID, Reply: true}
	ctx, cancel := context.WithTimeout(context.Background(), c.n.cfg.HandshakeTimeout)
	defer cancel()
	s, err := c.dialStream(ctx, l, o)
	if err != nil {
		c.streams.Unreserve(q.Kind)
		refuse(err)
		return
	}
	s.s.Name, s.s.Meta, s.s.Kind = q.Name, q.Meta, q.Kind
	if q.Kind == wire.StreamKindResource {
		c.offerResource(s)
		return
	}
	c.streamq <- s
}

// streamRefused runs on the link's listener when its request failed.
func (c *Conn) streamRefused(r *wire.StreamRefused) {
	if ps := c.streams.Answered(r.ID); ps != nil {
		ps.Ch <- stream.Result[*Stream]{Err: &RejectedError{Reason: r.Error}}
	}
}
