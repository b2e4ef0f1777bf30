package nearnet

import (
	"bufio"
	"context"
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
	return stream.Take(ctx, c.streamq, c.s.Ended(), c.s.EndErr, func(s *Stream) { c.streams.Take(s, wire.StreamKindBytes) })
}

func (c *Conn) openStream(ctx context.Context, name string, meta map[string]string, kind string) (*Stream, error) {
	s, err := c.streamer().Open(ctx, name, meta, kind)
	if err != nil {
		return nil, &StreamError{Name: name, Err: err}
	}
	return s, nil
}

// streamer hands internal/session's stream opener and acceptor c's parts.
func (c *Conn) streamer() *session.Streams[*Stream] {
	return &session.Streams[*Stream]{
		S: c.s, Table: &c.streams, Dials: &c.n.dialer, Timeout: c.n.cfg.HandshakeTimeout,
		New: func(id uint64, name string, meta map[string]string, kind string, st transport.Stream) *Stream {
			s := &Stream{c: c}
			s.s = stream.New(id, name, meta, kind, st, c.n.cfg.StreamBuffer, c.n.cfg.CloseTimeout, func() { c.streams.Drop(s) })
			return s
		},
		Abort: (*Stream).Abort,
		Deliver: func(s *Stream) {
			if s.s.Kind == wire.StreamKindResource {
				c.offerResource(s)
			} else {
				c.streamq <- s
			}
		},
		Rejected: func(reason string) error { return &RejectedError{Reason: reason} },
		FromT:    fromTransport,
	}
}

func anyStream(bool) bool { return true }

// abortStreams ends every stream of c at once, queued ones included.
func (c *Conn) abortStreams() { c.streams.Each(anyStream, (*Stream).Abort) }

// endStreams runs once the Conn has ended: streams the application has
// not taken are aborted, and all of them if the Conn failed or was
// aborted.
func (c *Conn) endStreams() {
	c.streams.Each(func(taken bool) bool { return !taken || c.aborted.Load() }, (*Stream).Abort)
}

// closeStreams closes every stream of c gracefully (Node.Close).
func (c *Conn) closeStreams() { c.streams.Each(anyStream, func(s *Stream) { s.Close(); <-s.s.Done() }) }

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
	return e.c.streamer().Accept(st, &e.key, o)
}

// acceptStreams takes the streams the peer opens on l's transport
// connection itself (QUIC).
func (n *Node) acceptStreams(l *link) {
	session.AcceptLoop(&n.wg, l, n.cfg.HandshakeTimeout, func(st transport.Stream) error {
		return n.acceptStream(st, bufio.NewReader(st))
	}, func(err error) {
		n.cfg.Logger.Debug("nearnet: incoming stream refused", "peer", PeerID(l.Peer.ID).Short(), "err", err)
	})
}

// answerStreamRequest runs on the link's dialer when the listener asked
// for a stream.
func (c *Conn) answerStreamRequest(l *link, q *wire.StreamRequest) { c.streamer().Answer(l, q) }

// streamRefused runs on the link's listener when its request failed.
func (c *Conn) streamRefused(r *wire.StreamRefused) { c.streamer().Refused(r) }
