package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/internal/budget"
	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Kind is where a session is in its life: the root's StateKind, in the
// same order.
type Kind int

const (
	Setup Kind = iota
	Preparing
	Waiting
	Ready
	Failed
	Cancelled
)

// State is a session's state and the error that caused it, if any: the
// root's State.
type State struct {
	Kind Kind
	Err  error
}

// Terminal reports whether the state is final (failed or cancelled).
func (s State) Terminal() bool { return s.Kind == Failed || s.Kind == Cancelled }

// ViabilityKind is what happened to a session's path: the root's
// ViabilityKind, in the same order.
type ViabilityKind int

const (
	Inviable ViabilityKind = iota
	Viable
	Reconnected
	PathUnavailable
)

// Owner is what a Session needs of its node and of the API above it. The
// methods marked "lock held" are called with the Session's lock held and
// must not call back into it (they queue callbacks, or touch the node's
// tables, whose locks come after the Session's).
type Owner interface {
	// StateChanged queues the state callback (lock held).
	StateChanged(s State)
	// ViabilityChanged queues the viability callback (lock held).
	ViabilityChanged(kind ViabilityKind, err error)
	// Attached registers l's stream handle for incoming streams (lock held).
	Attached(l *Path)
	// Ended says that the session reached its final state s: the node
	// forgets it and drops the stream handles of its links (lock held).
	Ended(s State, handles []string)
	// RedialRound makes one round of attempts to reach the peer again,
	// addr first, for a suspended session, attaching the link it gets;
	// refused reports that every host answered and nothing listened,
	// with the last error. It runs with no lock held.
	RedialRound(ctx context.Context, addr string) (refused bool, last error)
	// Rediscover asks discovery where the peer is now, within ctx.
	Rediscover(ctx context.Context)
	// StreamRequest is the listener asking for a stream on l; it must
	// not block (link.Handler).
	StreamRequest(l *Path, q *wire.StreamRequest)
	// StreamRefused is the dialer's answer that our request failed.
	StreamRefused(r *wire.StreamRefused)
}

// Config is what sessions take of the node's configuration, with the
// node's errors: a Session reports the root's error types, which it makes
// through these functions. The node fills every field; sessions share it.
type Config struct {
	Clock             Clock // nil: Real
	ReceiveBuffer     int
	SendBuffer        int
	HandshakeTimeout  time.Duration
	ResumeWindow      time.Duration // <= 0: resume off
	DropTime          time.Duration
	ViabilityDebounce time.Duration
	Logger            *slog.Logger

	RxBudget, TxBudget *budget.Budget // the memory budget's halves (NewBudgets); nil: no bound

	NodeDone <-chan struct{} // closed when the node closes: nothing resumes any more
	Go       func(f func())  // runs f on a goroutine the node waits for at its close

	ErrClosed      error                                       // the API's ErrClosed
	ErrNoDatagrams error                                       // the API's ErrDatagramsUnavailable
	FromTransport  func(err error) error                       // maps the peer's close as a transport reports it
	CloseError     func(code int, reason string) error         // the API's *CloseError
	PeerError      func(code int, reason string) error         // what a close code means to the application
	Lost           func(err error, undelivered [][]byte) error // the API's *SessionLostError

	// Paths beyond the LAN (internal/icepath); nil: none. Suspended is
	// told that s lost its last link (s's lock held; it must not block);
	// Extension takes a message of an extension kind on l (link.ExtensionHandler);
	// Redial, before each redial round, resumes s another way if it can.
	// Inviable is told that s's send link stopped getting answers (s's
	// lock held; it must not block), before the drop time ends the link.
	Suspended func(s *Session)
	Inviable  func(s *Session)
	Redial    func(ctx context.Context, s *Session) (resumed bool)
	Extension func(l *Path, kind wire.Kind, body []byte)
}

// DatagramLinger is how long the flow of a session the peer closed stays
// open, so that datagrams sent just before the close are not lost to the
// race between UDP and the TCP close.
const DatagramLinger = 250 * time.Millisecond

// ErrNoFlow means the session has no datagram flow.
var ErrNoFlow = errors.New("nearnet: no datagram flow")

// A Session is the session of one Conn: its links, the messages in both
// directions across them, resume, viability and the state machine. It owns
// the lock that guards all of them; each part (Links, Log, Recv, ...) owns
// its fields. It reaches the node through its Owner and a link through its
// Path, and runs no callback: the Owner queues them.
//
// A Session is safe for concurrent use by multiple goroutines.
type Session struct {
	cfg          *Config
	clock        Clock
	owner        Owner
	localGreater bool // this node's peer ID is the greater (duplicate resolution)

	mu     sync.Mutex         // guards everything below
	peer   Peer               // as the first link's hello named it
	state  Machine[State]     // and the channel closed at its next change
	links  Links[Path, *Path] // attached links not yet ended, and the send link
	orphan Timer              // fails the session if no link replaces a dropped one

	rx       Recv          // received messages, in order across links
	direct   Direct[*Path] // a ReceiveMessage caller reading a link itself
	dstats   dgram.Stats   // datagram counters of links that ended
	draining transport.Flow
	closed   bool          // Close or Abort was called
	done     chan struct{} // closed when the last link has ended after the session ended
	ended    chan struct{} // closed when the session reaches a terminal state
	handles  []string      // stream handles of our links

	txmu        sync.Mutex // guards tx; taken after mu, before a link's mu
	tx          Log        // sent messages not yet acknowledged (resume on)
	susp        Suspension // the last link broke; waiting for a new one until the window ends
	retry       chan struct{}
	peerBoot    string      // the peer node's boot ID when the session began
	peerResumes atomic.Bool // peerBoot is set: the peer acks and resumes
	acks        Acks        // when to acknowledge what we received
	ackFire     func()      // sends the delayed ack
	via         Viability   // whether traffic gets through, and its debounced report

	budgetState // the memory budget (budget.go)
}

// New makes a session with peer, in state st (Preparing for a Connect, or
// Ready for a link that is about to be attached). localGreater says
// whether this node's peer ID is the greater of the two. The owner is not
// told of the first state: it reports it itself, once the session is in
// place.
func New(cfg *Config, owner Owner, peer Peer, st Kind, localGreater bool) *Session {
	s := &Session{
		cfg:          cfg,
		clock:        cfg.Clock,
		owner:        owner,
		localGreater: localGreater,
		peer:         peer,
		done:         make(chan struct{}),
		ended:        make(chan struct{}),
		retry:        make(chan struct{}, 1),
	}
	if s.clock == nil {
		s.clock = Real
	}
	s.state.Init(State{Kind: st})
	s.links.Init()
	s.initBudget()
	s.ackFire = func() {
		s.mu.Lock()
		s.sendAckLocked()
		s.mu.Unlock()
	}
	return s
}

// Peer returns the remote peer.
func (s *Session) Peer() Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peer
}

// State returns the current state and a channel closed at the next change.
func (s *Session) State() (State, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Cur(), s.state.Changed()
}

// Terminal reports whether the session has ended.
func (s *Session) Terminal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Terminal()
}

// Ended returns the channel closed when the session reaches a final state.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// Done returns the channel closed when the session has ended and its last
// link is gone.
func (s *Session) Done() <-chan struct{} { return s.done }

// EndErr is what calls on an ended session return: the error it failed
// with, or ErrClosed.
func (s *Session) EndErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Cur().Err != nil {
		return s.state.Cur().Err
	}
	return s.cfg.ErrClosed
}

// setStateLocked moves to st and tells the owner. s.mu is held.
func (s *Session) setStateLocked(st State) {
	if !s.state.Set(st, st.Terminal()) {
		return
	}
	if st.Terminal() {
		s.direct.Unwatch()
		s.links.End()
		if s.orphan != nil {
			s.orphan.Stop()
		}
		s.rx.End()
		s.closeBudgetLocked()
		close(s.ended)
		s.acks.Stop()
		s.via.Stop()
		s.susp.End()
		s.owner.Ended(st, s.handles)
	}
	s.owner.StateChanged(st)
}

// Wait moves a preparing session to waiting after a failed attempt, with
// err; it reports false if the session is ready meanwhile (an incoming
// link made it so) and there is nothing to wait for.
func (s *Session) Wait(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Cur().Kind == Ready {
		return false
	}
	s.setStateLocked(State{Kind: Waiting, Err: err})
	return true
}

// Retry moves a waiting session back to preparing for the next attempt.
func (s *Session) Retry() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Cur().Kind == Waiting {
		s.setStateLocked(State{Kind: Preparing})
	}
}

// FailConnect fails a session whose Connect gave up with err, unless a
// link made it ready meanwhile; it reports whether the session is ready.
func (s *Session) FailConnect(err error) (ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.state.Cur().Kind; k == Preparing || k == Waiting {
		s.failLocked(err)
	}
	return s.state.Cur().Kind == Ready
}

// RetryWake returns the channel Restart signals on.
func (s *Session) RetryWake() <-chan struct{} { return s.retry }

// SendMessage queues p on the send link, logging it for resume when the
// peer resumes; see the root's Conn.SendMessage. It waits for the send
// buffer, and for acks only while no reader of the session waits for room
// (budget.go says why).
func (s *Session) SendMessage(ctx context.Context, p []byte) error {
	logging := s.resumeOn()
	for {
		var wait <-chan struct{}
		var l *Path
		logged := false
		if logging {
			s.txmu.Lock()
			if s.tx.Full(len(p), s.txLimit()) {
				stall := s.stall.Wait()
				if !s.stall.Stalled() {
					// Too much unacknowledged: wait for an ack, unless a
					// reader of ours begins to wait for room meanwhile.
					wait = s.tx.Room()
					s.txmu.Unlock()
					select {
					case <-wait:
					case <-stall:
					case <-s.ended: // reported below
					case <-ctx.Done():
						return ctx.Err()
					}
					continue
				}
				// The ack may be behind what our reader does not read.
				s.tx.MakeRoom(len(p), s.txLimit())
			}
			logged = s.tx.Reserve(len(p))
		}
		l = s.links.Send()
		if l != nil {
			var err error
			wait, err = l.EnqueueData(p)
			if err == nil && wait == nil {
				if logged {
					s.tx.Add(p)
				} else if logging {
					s.tx.Skip()
				}
				if logging {
					s.txmu.Unlock()
				}
				return nil
			}
			yielded := false
			if logging {
				s.tx.Unreserve()
				if err == link.ErrNoBudget {
					yielded = s.tx.Yield() // the log gives way to what must be written
				}
				s.txmu.Unlock()
			}
			if err == link.ErrNoBudget && l.DropSpare() {
				yielded = true // and so do the link's spare buffers
			}
			if err == nil || err == link.ErrNoBudget {
				if yielded {
					continue
				}
				if err == link.ErrNoBudget {
					s.cfg.TxBudget.Squeeze(s.txAcct) // another session's log gives way
				}
				select {
				case <-wait:
					continue
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		} else if logging {
			if s.susp.Suspended() {
				// No link until the session resumes: the message is
				// logged and goes out with the resend.
				if !logged {
					wait = s.tx.BudgetWait(len(p))
				}
				if wait == nil {
					s.tx.Add(p)
					s.txmu.Unlock()
					return nil
				}
				s.txmu.Unlock()
				select {
				case <-wait:
				case <-s.ended:
				case <-ctx.Done():
					return ctx.Err()
				}
				continue
			}
			s.tx.Unreserve()
			s.txmu.Unlock()
		}
		// No link takes data right now: the session ended, or a duplicate
		// is being swapped for its successor.
		s.mu.Lock()
		if s.state.Terminal() {
			err := s.sendErrLocked()
			s.mu.Unlock()
			return err
		}
		ch := s.links.Changed()
		changed := s.links.Send() != l || s.susp.Suspended()
		s.mu.Unlock()
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

func (s *Session) sendErrLocked() error {
	if st := s.state.Cur(); st.Kind == Failed && st.Err != nil {
		return st.Err
	}
	return s.cfg.ErrClosed
}

// ReceiveMessage returns the next message; see the root's
// Conn.ReceiveMessage.
func (s *Session) ReceiveMessage(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	s.returnedLocked()
	for {
		if s.closed {
			s.mu.Unlock()
			return nil, s.cfg.ErrClosed
		}
		if m, ok := s.rx.Take(s.cfg.ReceiveBuffer); ok {
			s.lendLocked(m)
			s.mu.Unlock()
			return m, nil
		}
		if err := s.rx.Err(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if l := s.directLinkLocked(); l != nil {
			s.direct.Watch(ctx, &s.mu)
			s.direct.Begin(ctx, l)
			s.mu.Unlock()
			m, err := l.ReadDirect(ctx)
			s.mu.Lock()
			s.direct.End()
			if err != errNotRead {
				s.mu.Unlock()
				return m, err
			}
			continue
		}
		ch, _ := s.rx.ReaderWait() // neither a message nor an error: a channel
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
}

// deliver queues the data message numbered seq from link l, in sequence
// order across links. It blocks while the receive buffer is full or an
// earlier message is still due from another link. It reports false if the
// link should stop reading.
func (s *Session) deliver(l *Path, seq uint64, m []byte) bool {
	limit := s.cfg.ReceiveBuffer
	s.mu.Lock()
	for {
		if s.closed {
			s.droppedLocked(l, m)
			s.mu.Unlock() // discarded; keep reading to the peer's close frame
			return true
		}
		if s.state.Terminal() {
			s.mu.Unlock()
			return false
		}
		switch s.rx.Offer(seq, m, limit, s.links.Len() > 1) {
		case Duplicate:
			s.droppedLocked(l, m)
			s.mu.Unlock() // already delivered through another link
			return true
		case Queued:
			s.keptLocked(l, m)
			s.noteDeliveredLocked(len(m))
			s.mu.Unlock()
			return true
		}
		ch := s.rx.WriterWait()
		s.mu.Unlock()
		s.stall.Set(true)
		select {
		case <-ch:
		case <-l.Dead():
			s.stall.Set(false)
			return false
		}
		s.stall.Set(false)
		s.mu.Lock()
	}
}

// checkBase checks a base message on link l (CheckBase); a base that skips
// ahead with no other link is given the handshake timeout for one to come
// and fill the gap (WatchGap).
func (s *Session) checkBase(l *Path, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var announced uint64
	if l.resumed {
		announced = l.MyResume.Recv
	}
	gap, err := CheckBase(seq, l.resumed, announced, s.rx.Delivered(), s.links.Len() == 1)
	if gap {
		WatchGap(s.clock, s.cfg.HandshakeTimeout, seq, func() (bool, uint64) {
			s.mu.Lock()
			defer s.mu.Unlock()
			delivered := s.rx.Delivered()
			only, _ := s.links.Only()
			return delivered < seq && only == l && !s.state.Terminal(), delivered
		}, l.FailProtocol)
	}
	return err
}

// Attach attaches a freshly handshaken link and starts it. If the session
// already has a link, the worse of the two is closed with 4004: if that is
// the current send link, its queue is flushed first and the new link
// continues the message numbering with a base message. resume says that l
// resumes the session (Admit). It reports false if the session has ended,
// and whether this link took the session from preparing to ready.
func (s *Session) Attach(l *Path, resume bool) (ok, becameReady bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Terminal() || s.peerEndedLocked() {
		return false, false
	}
	l.s = s
	s.budgetLink(l)
	s.handles = append(s.handles, l.Handle)
	s.owner.Attached(l)
	if resume {
		l.resumed = true
		if err := s.resumeLocked(l, l.PeerResume.Recv); err != nil {
			if lost, ok := err.(*forgottenError); ok {
				// Not a fault of the peer's: say so before the end.
				l.CloseWith(wire.CloseSessionLost, lost.Error())
				s.failLocked(s.sessionLost(err))
			} else {
				s.links.Add(l) // it ends with the session
				s.failLocked(err)
			}
		}
		l.Start(l)
		return true, false
	}
	if other, ok := s.links.Only(); ok && s.direct.Busy() {
		// A ReceiveMessage caller is reading the other link itself: wake
		// it, since messages may now arrive on this one.
		other.Kick()
	}
	s.links.Add(l)
	if s.state.Cur().Kind == Preparing {
		s.peer = l.Peer
		s.peerBoot = l.PeerBoot
		s.peerResumes.Store(l.PeerBoot != "")
		s.setStateLocked(State{Kind: Ready})
		becameReady = true
	}
	cur := s.links.Send()
	switch {
	case cur == nil:
		s.promoteLocked(l)
	case Better(s.localGreater, l, cur):
		s.links.Retired(cur.CloseWith(wire.CloseDuplicate, "duplicate connection"))
		s.promoteLocked(l)
	default:
		l.CloseWith(wire.CloseDuplicate, "duplicate connection")
	}
	l.Start(l)
	return true, becameReady
}

// Admit decides what link l, a new link to this session's peer, does to
// it: resume reports that l resumes the session (both hellos offered it,
// naming each other's runs; myBoot is this node's run); over, that the
// session cannot take l, which does not resume it (the peer restarted, or
// the session was waiting to resume and the peer started afresh), and has
// failed: the caller starts a new session with l.
func (s *Session) Admit(l *Path, myBoot string) (resume, over bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peerEndedLocked() {
		return false, false // Attach refuses l: a new session takes it
	}
	resume = l.MyResume != nil && l.PeerResume != nil && l.PeerResume.PeerBoot == myBoot &&
		s.peerBoot != "" && l.PeerBoot == s.peerBoot
	over = !resume && s.peerBoot != "" && (l.PeerBoot != s.peerBoot || s.susp.Suspended())
	if over && !s.state.Terminal() {
		s.failLocked(s.sessionLost(errors.New("the peer no longer has the session (it restarted or gave up on it)")))
	}
	return resume, over
}

// PeerEnded reports whether the peer has closed the session, which may
// still be finishing its close handshake (peerEndedLocked).
func (s *Session) PeerEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerEndedLocked()
}

// peerEndedLocked reports whether the peer's close frame arrived on one of
// the session's links with a code that ends the session (not 4004, which
// retires a duplicate link, nor 4006, which asks for a resume). The link
// may not have ended yet (it finishes the close handshake first), but the
// peer has forgotten the session: a new link from it, as when it closes
// and at once connects again, belongs to a new session and must not join
// this one as a duplicate (Attach, Table.Attach). s.mu is held.
func (s *Session) peerEndedLocked() bool {
	for _, l := range s.links.All() {
		if code, ok := l.PeerClose(); ok && code != wire.CloseDuplicate && code != wire.CloseResume {
			return true
		}
	}
	return false
}

// ResumeOffer returns the resume offer for the hello of l, a link to this
// session's peer, or nil.
func (s *Session) ResumeOffer(l *Path) *wire.Resume {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Terminal() || s.peerBoot == "" || (!l.Outgoing() && s.peerBoot != l.PeerBoot) {
		return nil
	}
	return &wire.Resume{PeerBoot: s.peerBoot, Recv: s.rx.Delivered()}
}

// SetPeerBoot records the peer's boot ID for a session a link is about to
// establish (a session created for an incoming or dialed link).
func (s *Session) SetPeerBoot(boot string) {
	s.mu.Lock()
	s.peerBoot = boot
	s.peerResumes.Store(boot != "")
	s.mu.Unlock()
}

// promoteLocked makes l the send link (Links.Promote).
func (s *Session) promoteLocked(l *Path) {
	if s.orphan != nil {
		s.orphan.Stop()
		s.orphan = nil
	}
	s.links.Promote(l)
}

// linkEnded is called by a link's reader when the link is gone.
func (s *Session) linkEnded(l *Path, err error, peerClosed bool, code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, wasSend := s.links.Remove(l)
	if !found && !s.state.Terminal() {
		// Replaced by a resumed link (resumeLocked): nothing depends on it.
		if f := l.Flow; f != nil {
			addStats(&s.dstats, f.Stats())
			f.Close()
		}
		return
	}
	if f := l.Flow; f != nil {
		if peerClosed && s.links.Len() == 0 && !s.closed {
			// Datagrams the peer sent just before closing may still be on
			// their way: keep the flow open a moment for ReceiveDatagram.
			s.draining = f
			s.clock.AfterFunc(DatagramLinger, func() {
				s.mu.Lock()
				addStats(&s.dstats, f.Stats())
				if s.draining == f {
					s.draining = nil
				}
				s.mu.Unlock()
				f.Close()
			})
		} else {
			addStats(&s.dstats, f.Stats())
			f.Close()
		}
	}
	if s.state.Terminal() {
		if s.links.Len() == 0 {
			s.finishLocked()
		}
		return
	}
	s.rx.WakeWriters() // a link waiting on l's sequence numbers must re-check
	switch LinkEnded(s.links.Len(), peerClosed, code, s.resumeOn() && !s.closed, Resumable(err)) {
	case Continue:
		if wasSend {
			s.promoteLocked(s.links.Best(s.localGreater))
		}
	case SwapFailed:
		s.failLocked(errors.Join(errors.New("nearnet: a duplicate connection to the peer failed during the swap"), err))
	case AwaitSuccessor:
		s.orphan = s.clock.AfterFunc(s.cfg.HandshakeTimeout, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.links.Len() == 0 {
				s.failLocked(errors.New("nearnet: the peer dropped a duplicate connection and no other connection followed"))
			}
		})
	case Suspend:
		if peerClosed { // 4006: the peer asked us to resume
			s.suspendLocked(l, s.cfg.CloseError(code, reason), s.cfg.ResumeWindow)
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
		window := s.cfg.ResumeWindow
		if peerHostClosed(err) && (s.via.Viable() || peerHostFinished(err)) {
			window = min(window, s.cfg.DropTime)
		}
		s.suspendLocked(l, err, window)
	case PeerClosed:
		s.rx.SetErr(io.EOF)
		s.setStateLocked(State{Kind: Cancelled, Err: s.cfg.CloseError(code, reason)})
		s.finishLocked()
	case PeerFailed:
		err := s.cfg.PeerError(code, reason)
		if code == wire.CloseSessionLost {
			err = s.sessionLost(err) // the peer could not resume: list what it may lack
		}
		s.failLocked(err)
	default:
		s.failLocked(err)
	}
}

func (s *Session) failLocked(err error) {
	if s.rx.Err() == nil {
		s.rx.SetErr(err)
	}
	s.setStateLocked(State{Kind: Failed, Err: err})
	for _, l := range s.links.All() {
		go l.Fail(err)
	}
	if s.links.Len() == 0 {
		s.finishLocked()
	}
}

func (s *Session) finishLocked() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// Shutdown closes the session gracefully with close frames carrying code
// and reason, waiting first for a suspended session to resume; when ctx
// ends first, the session is aborted with abortErr and ctx's error
// returned. See the root's Conn.Close.
func (s *Session) Shutdown(ctx context.Context, code int, reason string, abortErr error) error {
	if err := s.awaitResume(ctx); err != nil {
		s.Abort(abortErr)
		return err
	}
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.rx.SetErr(s.cfg.ErrClosed)
		s.setStateLocked(State{Kind: Cancelled})
		if s.links.Len() == 0 {
			s.finishLocked()
		}
		for _, l := range s.links.All() {
			l.CloseWith(code, reason)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.Abort(abortErr)
		return ctx.Err()
	}
}

// awaitResume waits while s is suspended and its node runs: messages
// logged meanwhile reach the peer only if the session resumes, so the
// close frame must follow them on the new transport connection.
func (s *Session) awaitResume(ctx context.Context) error {
	for {
		s.mu.Lock()
		waiting := s.susp.Suspended() && !s.closed && !s.state.Terminal()
		ch := s.links.Changed()
		s.mu.Unlock()
		if !waiting {
			return nil
		}
		select {
		case <-ch:
		case <-s.ended:
		case <-s.cfg.NodeDone:
			return nil // nothing resumes once the node closes
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Abort ends the session at once, failing its links with err.
func (s *Session) Abort(err error) {
	s.mu.Lock()
	s.closed = true
	s.rx.SetErr(s.cfg.ErrClosed)
	s.setStateLocked(State{Kind: Cancelled})
	links := slices.Clone(s.links.All())
	if len(links) == 0 {
		s.finishLocked()
	}
	s.mu.Unlock()
	for _, l := range links {
		l.Fail(err)
	}
}

// SendPath returns the send link, nil between links. It takes no lock.
func (s *Session) SendPath() *Path { return s.links.Send() }

// StreamPath returns the link to open a stream over, waiting through a
// duplicate swap.
func (s *Session) StreamPath(ctx context.Context) (*Path, error) {
	for {
		if l := s.links.Send(); l != nil {
			return l, nil
		}
		s.mu.Lock()
		if s.state.Terminal() {
			s.mu.Unlock()
			return nil, s.EndErr()
		}
		ch := s.links.Changed()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Paths returns the attached links.
func (s *Session) Paths() []*Path {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.links.All())
}

// Unacked returns the bytes of sent messages not yet acknowledged.
func (s *Session) Unacked() int {
	s.txmu.Lock()
	defer s.txmu.Unlock()
	return s.tx.Bytes()
}

// SendEnded reports, for a datagram sent between links, the error of an
// ended session, or nil (the datagram is dropped: best effort).
func (s *Session) SendEnded() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Terminal() {
		return s.sendErrLocked()
	}
	return nil
}

// Flow returns the datagram flow to receive from: the send link's, or
// the last link's while it drains, or nil between links (with the channel
// that announces the next one), or why there is none (ErrNoFlow where the
// link has no flow).
func (s *Session) Flow() (transport.Flow, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, nil, s.cfg.ErrClosed
	case s.draining != nil:
		return s.draining, nil, nil
	case s.state.Terminal():
		if err := s.rx.Err(); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.sendErrLocked()
	}
	l := s.links.Send()
	if l == nil {
		return nil, s.links.Changed(), nil
	}
	if l.Flow == nil {
		return nil, nil, ErrNoFlow
	}
	select {
	case <-l.Flow.Done():
		return nil, s.links.Changed(), nil
	default:
	}
	return l.Flow, s.links.Changed(), nil
}

// DatagramStats returns the datagram counters over every link the session
// has had.
func (s *Session) DatagramStats() dgram.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dstats
	for _, l := range s.links.All() {
		if l.Flow != nil {
			addStats(&st, l.Flow.Stats())
		}
	}
	return st
}

func addStats(s *dgram.Stats, d dgram.Stats) {
	s.Sent += d.Sent
	s.SentBytes += d.SentBytes
	s.Received += d.Received
	s.ReceivedBytes += d.ReceivedBytes
	x, y := &s.Dropped, d.Dropped
	x.TooLarge += y.TooLarge
	x.SendBuffer += y.SendBuffer
	x.SendError += y.SendError
	x.Auth += y.Auth
	x.Replay += y.Replay
	x.TooOld += y.TooOld
	x.Truncated += y.Truncated
	x.Address += y.Address
	x.QueueFull += y.QueueFull
}

// Go runs f as the node's goroutine.
func (s *Session) goNode(f func()) {
	if s.cfg.Go != nil {
		s.cfg.Go(f)
		return
	}
	go f()
}

// String names the session's peer for logs.
func (s *Session) String() string { return fmt.Sprintf("session %x", s.peer.ID[:4]) }
