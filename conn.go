package nearnet

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/stream"
	"github.com/nearnet/nearnet/internal/wire"
)

// Conn is the connection to one remote peer. A Node keeps at most one Conn
// per peer: when both peers dial each other at once, the two transport
// connections are merged into one Conn and one of them is dropped without
// losing a message (PROTOCOL.md, "Duplicate connections").
//
// A Conn is safe for concurrent use by multiple goroutines. Messages sent
// by one goroutine arrive in the order it sent them.
type Conn struct {
	n  *Node
	id PeerID           // the peer's; never changes
	s  *session.Session // links, messages, resume, viability, state (internal/session)

	aborted atomic.Bool // failed or aborted: streams are aborted too

	// Streams (stream.go) and resources (resource.go).
	streams stream.Table[*Stream]  // open streams, backlog places, our requests
	streamq chan *Stream           // accepted by the node, not yet by AcceptStream
	resq    chan *IncomingResource // offers not yet taken by AcceptResource
}

// link is one transport connection to the peer as the session sees it
// (session.Path: the link protocol and what the session keeps about it).
type link = session.Path

func newConn(n *Node, peer session.Peer, st StateKind) *Conn {
	c := &Conn{
		n:       n,
		id:      PeerID(peer.ID),
		streamq: make(chan *Stream, n.cfg.StreamBacklog),
		resq:    make(chan *IncomingResource, n.cfg.StreamBacklog),
	}
	c.streams.Init(n.cfg.StreamBacklog)
	c.s = session.New(&n.sessCfg, (*connOwner)(c), peer, session.Kind(st), n.id.Compare(c.id) > 0)
	(*connOwner)(c).StateChanged(session.State{Kind: session.Kind(st)})
	return c
}

// Peer returns the remote peer as its handshake established it (while
// preparing, only ID and the advertised Name are known). After the session
// resumed, Addr is the new transport connection's.
func (c *Conn) Peer() Peer { return publicPeer(c.s.Peer()) }

func publicPeer(p session.Peer) Peer {
	return Peer{ID: PeerID(p.ID), Name: p.Name, Meta: p.Meta, Fingerprint: p.Fingerprint, Addr: p.Addr, Version: p.Version}
}

// State returns the current state and a channel that is closed at the next
// change, so a caller can wait for changes without polling:
//
//	for {
//		s, changed := c.State()
//		if s.Terminal() { break }
//		<-changed
//	}
func (c *Conn) State() (State, <-chan struct{}) {
	s, ch := c.s.State()
	return State{Kind: StateKind(s.Kind), Err: s.Err}, ch
}

// SendMessage queues p to be sent as one message and returns once it is
// queued; it blocks while the send buffer (Config.SendBuffer) is full,
// until ctx is done. Cancelling ctx after SendMessage returned has no
// effect on the message. p may be reused once SendMessage returns.
//
// A message over Config.MaxMessageSize fails with [ErrMessageTooLarge] and
// leaves the connection intact. On a closed connection the error is
// [ErrClosed], or the error the connection failed with.
func (c *Conn) SendMessage(ctx context.Context, p []byte) error {
	if len(p) > c.n.cfg.MaxMessageSize {
		return ErrMessageTooLarge
	}
	return c.s.SendMessage(ctx, p)
}

// ReceiveMessage returns the next message, blocking until one arrives or
// ctx is done. The returned slice belongs to the caller. After the peer
// closes the connection gracefully and every message has been taken, it
// returns io.EOF; after a failure, the failure; after Close or Abort,
// [ErrClosed].
func (c *Conn) ReceiveMessage(ctx context.Context) ([]byte, error) { return c.s.ReceiveMessage(ctx) }

// Close closes the connection gracefully: messages already queued are sent,
// then a close frame, and Close waits (up to Config.CloseTimeout) for the
// peer to acknowledge it, which means the peer has read everything sent.
// The peer's ReceiveMessage returns its remaining messages, then io.EOF.
// A connection waiting to resume (see Config.ResumeWindow) first waits for
// the new transport connection, which carries what was sent meanwhile.
// Close returns nil if all of that happened in time.
func (c *Conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.n.cfg.CloseTimeout)
	defer cancel()
	return c.Shutdown(ctx)
}

// Shutdown is Close with a caller's deadline: when ctx ends first, the
// connection is aborted and ctx's error returned.
func (c *Conn) Shutdown(ctx context.Context) error { return c.shutdown(ctx, wire.CloseNormal, "") }

// shutdown is Shutdown whose close frames carry code and reason: 1001
// "going away" when the node closes (PROTOCOL.md section 7).
func (c *Conn) shutdown(ctx context.Context, code int, reason string) error {
	err := c.s.Shutdown(ctx, code, reason, errAborted)
	if err != nil {
		c.aborted.Store(true)
		c.abortStreams()
	}
	return err
}

var errAborted = errors.New("nearnet: connection aborted")

// Abort closes the connection at once, discarding queued messages; the
// peer sees the connection reset.
func (c *Conn) Abort() {
	c.aborted.Store(true)
	c.s.Abort(errAborted)
	c.abortStreams()
}

// Done returns a channel closed when the connection has ended and released
// its network resources.
func (c *Conn) Done() <-chan struct{} { return c.s.Done() }

// Viable reports whether traffic currently gets through the connection.
func (c *Conn) Viable() bool { return c.s.Viable() }

// Restart retries at once: a connection waiting to connect or to resume
// tries now instead of at its next backoff; a ready connection that
// dialed drops its transport connection and resumes on a new one (no
// message is lost). It does nothing on a connection that has ended.
func (c *Conn) Restart() { c.s.Restart() }

// waitReady waits while c is preparing and returns it once ready, or the
// error it failed with.
func (c *Conn) waitReady(ctx context.Context) (*Conn, error) {
	for {
		s, changed := c.State()
		switch {
		case s.Kind == StateReady:
			return c, nil
		case s.Terminal():
			if s.Err != nil {
				return nil, s.Err
			}
			return nil, ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// connOwner is the Conn as its session's owner (session.Owner): the
// callbacks, the node's tables, redial, streams.
type connOwner Conn

func (o *connOwner) conn() *Conn { return (*Conn)(o) }

func (o *connOwner) StateChanged(s session.State) {
	if f := o.n.cfg.OnStateChange; f != nil {
		c, st := o.conn(), State{Kind: StateKind(s.Kind), Err: s.Err}
		o.n.events.Queue(func() { f(c, st) })
	}
}

func (o *connOwner) ViabilityChanged(k session.ViabilityKind, err error) {
	if f := o.n.cfg.OnViability; f != nil {
		c, e := o.conn(), ViabilityEvent{Kind: ViabilityKind(k), Err: exported(err)}
		if k == session.Reconnected {
			e.Path = c.Path()
		}
		o.n.events.Queue(func() { f(c, e) })
	}
}

func (o *connOwner) Attached(l *link) { o.n.addHandle(l, o.conn()) }

func (o *connOwner) Ended(s session.State, handles []string) {
	c := o.conn()
	o.n.forget(c)
	if s.Kind == session.Failed {
		c.aborted.Store(true)
	}
	o.n.handles.Drop(handles)
	go c.endStreams()
}

func (o *connOwner) RedialRound(ctx context.Context, addr string) (bool, error) {
	return o.n.redialRound(ctx, o.conn(), addr)
}

func (o *connOwner) Rediscover(ctx context.Context) { o.n.rediscover(ctx, o.id) }

func (o *connOwner) StreamRequest(l *link, q *wire.StreamRequest) {
	c := o.conn()
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		c.answerStreamRequest(l, q)
	}()
}

func (o *connOwner) StreamRefused(r *wire.StreamRefused) { o.conn().streamRefused(r) }
