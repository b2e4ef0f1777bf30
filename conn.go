package nearnet

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/internal/budget"
	"github.com/nearnet/nearnet/internal/session"
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
	n    *Node
	peer Peer

	mu     sync.Mutex                 // guards everything below
	state  session.Machine[State]     // and the channel closed at its next change
	links  session.Links[link, *link] // attached links not yet ended, and the send link
	orphan *time.Timer                // fails the Conn if no link replaces a dropped one

	rx       session.Recv          // received messages, in order across links
	direct   session.Direct[*link] // a ReceiveMessage caller reading a link itself (read.go)
	dstats   DatagramStats         // datagram counters of links that ended
	draining datagramFlow          // the last link's flow, open for datagramLinger after the peer closed
	closed   bool                  // Close or Abort was called
	done     chan struct{}         // closed when the last link has ended after the Conn ended
	ended    chan struct{}         // closed when the Conn reaches a terminal state

	// Streams (stream.go) and resources (resource.go).
	streams         map[*Stream]struct{}      // open streams, for Abort and Node.Close
	streamq         chan *Stream              // accepted by the node, not yet by AcceptStream
	resq            chan *IncomingResource    // offers not yet taken by AcceptResource
	streamsQueued   int                       // places taken in streamq, counting those being set up
	resourcesQueued int                       // the same for resq
	nextStream      uint64                    // the last stream number used
	pending         map[uint64]*pendingStream // our stream requests the peer has yet to open
	handles         []string                  // stream handles of our links, in Node.handles
	aborted         bool                      // failed or aborted: streams are aborted too

	// The memory budget (budget.go).
	rxAcct, txAcct *budget.Account
	rm             budget.Meter // the queue and the message the application holds last
	lent           int          // what rm counts for that message

	// Session resume (resume.go) and viability (viability.go).
	txmu        sync.Mutex         // guards tx; taken after mu, before a link's mu
	tx          session.Log        // sent messages not yet acknowledged (resume on)
	susp        session.Suspension // the last link broke; waiting for a new one until the window ends
	retry       chan struct{}
	peerBoot    string            // the peer node's boot ID when the session began
	peerResumes atomic.Bool       // peerBoot is set: the peer acks and resumes
	acks        session.Acks      // when to acknowledge what we received
	ackFire     func()            // sends the delayed ack (ackFireFunc)
	via         session.Viability // whether traffic gets through, and its debounced report
}

func newConn(n *Node, peer Peer, st StateKind) *Conn {
	c := &Conn{
		n:       n,
		peer:    peer,
		done:    make(chan struct{}),
		ended:   make(chan struct{}),
		retry:   make(chan struct{}, 1),
		streamq: make(chan *Stream, n.cfg.StreamBacklog),
		resq:    make(chan *IncomingResource, n.cfg.StreamBacklog),
	}
	c.state.Init(State{Kind: st})
	c.links.Init()
	c.initBudget()
	c.ackFire = c.ackFireFunc()
	if f := n.cfg.OnStateChange; f != nil {
		c.mu.Lock()
		c.notifyLocked(func() { f(c, State{Kind: st}) })
		c.mu.Unlock()
	}
	return c
}

// Peer returns the remote peer as its handshake established it (while
// preparing, only ID and the advertised Name are known). After the session
// resumed, Addr is the new transport connection's.
func (c *Conn) Peer() Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
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
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Cur(), c.state.Changed()
}

// setStateLocked moves to s and tells watchers. c.mu is held.
func (c *Conn) setStateLocked(s State) {
	if !c.state.Set(s, s.Terminal()) {
		return
	}
	if s.Terminal() {
		c.direct.Unwatch()
		c.links.End()
		if c.orphan != nil {
			c.orphan.Stop()
		}
		c.rx.End()
		c.closeBudgetLocked()
		close(c.ended)
		c.acks.Stop()
		c.via.Stop()
		c.susp.End()
		c.n.forget(c)
		if s.Kind == StateFailed {
			c.aborted = true
		}
		c.n.dropHandles(c.handles)
		go c.endStreams()
	}
	if f := c.n.cfg.OnStateChange; f != nil {
		c.notifyLocked(func() { f(c, s) })
	}
}

// notifyLocked queues an application callback about c (Node.notify).
// c.mu is held, so the callbacks of c are queued in the order of c's
// changes.
func (c *Conn) notifyLocked(f func()) { c.n.notify(f) }

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
	logging := c.resumeOn()
	for {
		var wait <-chan struct{}
		var l *link
		if logging {
			c.txmu.Lock()
			if c.tx.Full(len(p), c.txLimit()) {
				// Too much unacknowledged: wait for an ack.
				wait = c.tx.Room()
				c.txmu.Unlock()
				select {
				case <-wait:
					continue
				case <-c.ended:
					continue // reported below
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		l = c.links.Send()
		if l != nil {
			var err error
			wait, err = l.EnqueueData(p)
			if err == nil && wait == nil {
				if logging {
					c.tx.Add(p)
					c.txmu.Unlock()
				}
				return nil
			}
			if logging {
				c.tx.Unreserve()
				c.txmu.Unlock()
			}
			if err == nil {
				select {
				case <-wait:
					continue
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		} else if logging {
			if c.susp.Suspended() {
				// No link until the session resumes: the message is
				// logged and goes out with the resend.
				c.tx.Add(p)
				c.txmu.Unlock()
				return nil
			}
			c.txmu.Unlock()
		}
		// No link takes data right now: the Conn ended, or a duplicate is
		// being swapped for its successor.
		c.mu.Lock()
		if c.state.Terminal() {
			err := c.sendErrLocked()
			c.mu.Unlock()
			return err
		}
		ch := c.links.Changed()
		changed := c.links.Send() != l || c.susp.Suspended()
		c.mu.Unlock()
		if changed {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Conn) sendErrLocked() error {
	if c.state.Cur().Kind == StateFailed && c.state.Cur().Err != nil {
		return c.state.Cur().Err
	}
	return ErrClosed
}

// ReceiveMessage returns the next message, blocking until one arrives or
// ctx is done. The returned slice belongs to the caller. After the peer
// closes the connection gracefully and every message has been taken, it
// returns io.EOF; after a failure, the failure; after Close or Abort,
// [ErrClosed].
func (c *Conn) ReceiveMessage(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	c.returnedLocked()
	for {
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if m, ok := c.rx.Take(c.n.cfg.ReceiveBuffer); ok {
			c.lendLocked(m)
			c.mu.Unlock()
			return m, nil
		}
		if err := c.rx.Err(); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if l := c.directLinkLocked(); l != nil {
			c.direct.Watch(ctx, &c.mu)
			c.direct.Begin(ctx, l)
			c.mu.Unlock()
			m, err := l.ReadDirect(ctx)
			c.mu.Lock()
			c.direct.End()
			if err != errNotRead {
				c.mu.Unlock()
				return m, err
			}
			continue
		}
		ch, _ := c.rx.ReaderWait() // neither a message nor an error: a channel
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
	}
}

// deliver queues the data message numbered seq from link l, in sequence
// order across links. It blocks while the receive buffer is full or an
// earlier message is still due from another link. It reports false if the
// link should stop reading.
func (c *Conn) deliver(l *link, seq uint64, m []byte) bool {
	limit := c.n.cfg.ReceiveBuffer
	c.mu.Lock()
	for {
		if c.closed {
			c.droppedLocked(l.Link, m)
			c.mu.Unlock() // discarded; keep reading to the peer's close frame
			return true
		}
		if c.state.Terminal() {
			c.mu.Unlock()
			return false
		}
		switch c.rx.Offer(seq, m, limit, c.links.Len() > 1) {
		case session.Duplicate:
			c.droppedLocked(l.Link, m)
			c.mu.Unlock() // already delivered through another link
			return true
		case session.Queued:
			c.keptLocked(l.Link, m)
			c.noteDeliveredLocked(len(m))
			c.mu.Unlock()
			return true
		}
		ch := c.rx.WriterWait()
		c.mu.Unlock()
		select {
		case <-ch:
		case <-l.Dead():
			return false
		}
		c.mu.Lock()
	}
}

// checkBase checks a base message on link l (session.CheckBase); a base
// that skips ahead with no other link is given the handshake timeout for
// one to come and fill the gap (session.WatchGap).
func (c *Conn) checkBase(l *link, seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var announced uint64
	if l.resumed {
		announced = l.myResume.Recv
	}
	gap, err := session.CheckBase(seq, l.resumed, announced, c.rx.Delivered(), c.links.Len() == 1)
	if gap {
		session.WatchGap(session.Real, c.n.cfg.HandshakeTimeout, seq, func() (bool, uint64) {
			c.mu.Lock()
			defer c.mu.Unlock()
			delivered := c.rx.Delivered()
			only, _ := c.links.Only()
			return delivered < seq && only == l && !c.state.Terminal(), delivered
		}, l.FailProtocol)
	}
	return err
}

// better reports whether link a should survive over link b; both peers
// compute the same answer (session.Better).
func (c *Conn) better(a, b *link) bool {
	return session.Better(c.n.id.Compare(c.peer.ID) > 0, a, b)
}

// addLink attaches a freshly handshaken link and starts it. If the Conn
// already has a link, the worse of the two is closed with 4004: if that is
// the current send link, its queue is flushed first and the new link
// continues the message numbering with a base message. becameReady is set
// if this link took the Conn from preparing to ready.
func (c *Conn) addLink(l *link, becameReady *bool, resume bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Terminal() {
		return false
	}
	l.c = c
	c.budgetLink(l)
	c.handles = append(c.handles, l.handle)
	c.n.addHandle(l, c)
	if resume {
		l.resumed = true
		if err := c.resumeLocked(l, l.peerResume.Recv); err != nil {
			c.links.Add(l) // it ends with the Conn
			c.failLocked(err)
		}
		l.start()
		return true
	}
	if other, ok := c.links.Only(); ok && c.direct.Busy() {
		// A ReceiveMessage caller is reading the other link itself: wake
		// it, since messages may now arrive on this one (read.go).
		other.Kick()
	}
	c.links.Add(l)
	if c.state.Cur().Kind == StatePreparing {
		c.peer = l.peer
		c.peerBoot = l.peerBoot
		c.peerResumes.Store(l.peerBoot != "")
		c.setStateLocked(State{Kind: StateReady})
		*becameReady = true
	}
	cur := c.links.Send()
	switch {
	case cur == nil:
		c.promoteLocked(l)
	case c.better(l, cur):
		c.links.Retired(cur.CloseWith(wire.CloseDuplicate, "duplicate connection"))
		c.promoteLocked(l)
	default:
		l.CloseWith(wire.CloseDuplicate, "duplicate connection")
	}
	l.start()
	return true
}

// promoteLocked makes l the send link (session.Links.Promote).
func (c *Conn) promoteLocked(l *link) {
	if c.orphan != nil {
		c.orphan.Stop()
		c.orphan = nil
	}
	c.links.Promote(l)
}

// linkEnded is called by a link's reader when the link is gone.
func (c *Conn) linkEnded(l *link, err error, peerClosed bool, code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	found, wasSend := c.links.Remove(l)
	if !found && !c.state.Terminal() {
		// Replaced by a resumed link (resumeLocked): nothing depends on it.
		if f := l.flow; f != nil {
			c.dstats.add(f.Stats())
			f.Close()
		}
		return
	}
	if f := l.flow; f != nil {
		if peerClosed && c.links.Len() == 0 && !c.closed {
			// Datagrams the peer sent just before closing may still be on
			// their way: keep the flow open a moment for ReceiveDatagram.
			c.draining = f
			time.AfterFunc(datagramLinger, func() {
				c.mu.Lock()
				c.dstats.add(f.Stats())
				if c.draining == f {
					c.draining = nil
				}
				c.mu.Unlock()
				f.Close()
			})
		} else {
			c.dstats.add(f.Stats())
			f.Close()
		}
	}
	if c.state.Terminal() {
		if c.links.Len() == 0 {
			c.finishLocked()
		}
		return
	}
	c.rx.WakeWriters() // a link waiting on l's sequence numbers must re-check
	switch session.LinkEnded(c.links.Len(), peerClosed, code, c.resumeOn() && !c.closed, resumable(err)) {
	case session.Continue:
		if wasSend {
			c.promoteLocked(c.links.Best(c.n.id.Compare(c.peer.ID) > 0))
		}
	case session.SwapFailed:
		c.failLocked(errors.Join(errors.New("nearnet: a duplicate connection to the peer failed during the swap"), err))
	case session.AwaitSuccessor:
		c.orphan = time.AfterFunc(c.n.cfg.HandshakeTimeout, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.links.Len() == 0 {
				c.failLocked(errors.New("nearnet: the peer dropped a duplicate connection and no other connection followed"))
			}
		})
	case session.Suspend:
		if peerClosed { // 4005: the peer asked us to resume
			c.suspendLocked(l, &CloseError{Code: code, Reason: reason}, c.n.cfg.ResumeWindow)
			return
		}
		// The transport broke. If the peer's host closed it (a FIN
		// without a close frame, or a reset while traffic got through),
		// its process may be gone: wait no longer than DropTime for it.
		// After a silence (keepalives unanswered, the path gone) a reset
		// is the aftermath of a blip: one end's transport timed out and
		// its host answers the other's retransmission; the peer is still
		// there and redials. A FIN is never that: a host sends it only
		// when the socket is closed.
		window := c.n.cfg.ResumeWindow
		if peerHostClosed(err) && (c.via.Viable() || peerHostFinished(err)) {
			window = min(window, c.n.cfg.DropTime)
		}
		c.suspendLocked(l, err, window)
	case session.PeerClosed:
		c.rx.SetErr(io.EOF)
		c.setStateLocked(State{Kind: StateCancelled, Err: &CloseError{Code: code, Reason: reason}})
		c.finishLocked()
	case session.PeerFailed:
		c.failLocked(closeErrorFor(code, reason))
	default:
		c.failLocked(err)
	}
}

func (c *Conn) failLocked(err error) {
	if c.rx.Err() == nil {
		c.rx.SetErr(err)
	}
	c.setStateLocked(State{Kind: StateFailed, Err: err})
	for _, l := range c.links.All() {
		go l.Fail(err)
	}
	if c.links.Len() == 0 {
		c.finishLocked()
	}
}

func (c *Conn) finishLocked() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

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
	if err := c.awaitResume(ctx); err != nil {
		c.Abort()
		return err
	}
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.rx.SetErr(ErrClosed)
		c.setStateLocked(State{Kind: StateCancelled})
		if c.links.Len() == 0 {
			c.finishLocked()
		}
		for _, l := range c.links.All() {
			l.CloseWith(code, reason)
		}
	}
	c.mu.Unlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.Abort()
		return ctx.Err()
	}
}

// awaitResume waits while c is suspended (resume.go) and its node runs:
// messages logged meanwhile reach the peer only if the session resumes, so
// the close frame must follow them on the new transport connection.
func (c *Conn) awaitResume(ctx context.Context) error {
	for {
		c.mu.Lock()
		waiting := c.susp.Suspended() && !c.closed && !c.state.Terminal()
		ch := c.links.Changed()
		c.mu.Unlock()
		if !waiting {
			return nil
		}
		select {
		case <-ch:
		case <-c.ended:
		case <-c.n.done:
			return nil // nothing resumes once the node closes
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Abort closes the connection at once, discarding queued messages; the
// peer sees the connection reset.
func (c *Conn) Abort() {
	c.mu.Lock()
	c.closed = true
	c.aborted = true
	c.rx.SetErr(ErrClosed)
	c.setStateLocked(State{Kind: StateCancelled})
	links := slices.Clone(c.links.All())
	if len(links) == 0 {
		c.finishLocked()
	}
	c.mu.Unlock()
	for _, l := range links {
		l.Fail(errors.New("nearnet: connection aborted"))
	}
	c.abortStreams()
}

// Done returns a channel closed when the connection has ended and released
// its network resources.
func (c *Conn) Done() <-chan struct{} { return c.done }

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
