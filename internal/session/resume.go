package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/pathmon"
)

// Session resume (PROTOCOL.md, "Session resume").
//
// Data messages are numbered per session. The receiver acknowledges what
// it holds (ack messages: a count), and the sender keeps every message
// until it is acknowledged (Log). When the transport connection breaks
// without a close frame, the session is suspended instead of failed: it
// stays ready but inviable, SendMessage keeps logging, and the side that
// dialed the broken link redials. The hellos of the new link carry each
// side's count of messages received; each side sends a base message with
// the peer's count and then every logged message from there. Duplicates
// cannot occur: numbering continues. If no link comes within the resume
// window, the session fails with the messages never acknowledged.

var (
	// ErrDropped ends a link whose peer stayed silent for DropTime.
	ErrDropped = errors.New("nearnet: peer silent for DropTime; transport dropped")
	// ErrAddrGone ends a link whose local address was removed: nothing
	// sent from it can arrive any more. It is a resumable failure.
	ErrAddrGone = errors.New("nearnet: the connection's local address was removed")
	// errNoPath is why a link is inviable when its address or interface went.
	errNoPath = errors.New("nearnet: the connection's local address or interface went away")
	// errNotRead means a direct read read nothing for the caller.
	errNotRead = link.ErrNotRead
)

// resumeOn reports whether the session can resume: configured here, and
// the peer does it (its hello names its boot; other WebSocket clients
// send no acks and expect none).
func (s *Session) resumeOn() bool { return s.cfg.ResumeWindow > 0 && s.peerResumes.Load() }

// ResumeOn reports whether the session resumes (see resumeOn).
func (s *Session) ResumeOn() bool { return s.resumeOn() }

// txLimit bounds the log: twice the send buffer plus room for acks to
// arrive, so a steady stream never waits for them.
func (s *Session) txLimit() int { return 2*s.cfg.SendBuffer + 256<<10 }

// noteDeliveredLocked counts a message taken in for the next ack (Acks).
// s.mu is held.
func (s *Session) noteDeliveredLocked(size int) {
	if s.resumeOn() && s.acks.Note(size, s.clock, s.ackFire) {
		s.sendAckLocked()
	}
}

func (s *Session) sendAckLocked() {
	delivered := s.rx.Delivered()
	if !s.acks.Due(delivered) {
		return
	}
	l := s.links.Send()
	if l == nil {
		return // the resume hello carries the count
	}
	if l.Enqueue(wire.OpBinary, 0, wire.AppendAck(nil, delivered)) {
		s.acks.Sent(delivered)
	}
}

// acked takes the peer's ack.
func (s *Session) acked(n uint64) error {
	s.txmu.Lock()
	defer s.txmu.Unlock()
	return s.tx.AckTo(n)
}

// Resumable reports whether a link that ended with err (no close frame)
// leaves the session worth resuming: the network or the peer's host ended
// the transport. Bad input from the peer (a protocol error, an oversized
// message, a TLS failure) ends the session.
func Resumable(err error) bool {
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, ErrDropped, ErrAddrGone, os.ErrDeadlineExceeded,
		syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, syscall.ENETDOWN, syscall.EADDRNOTAVAIL} {
		if errors.Is(err, target) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// peerHostClosed reports whether the peer's host ended the transport
// (FIN or reset), as when the peer's process ended.
func peerHostClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// peerHostFinished reports whether the peer's host closed the transport
// with a FIN (no close frame before it), as when the peer's process ends.
func peerHostFinished(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// suspendLocked keeps the session through the loss of its last link l.
// s.mu is held.
func (s *Session) suspendLocked(l *Path, err error, window time.Duration) {
	s.susp.Begin(s.clock, window, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.susp.Suspended() && !s.state.Terminal() {
			s.failLocked(s.sessionLost(fmt.Errorf("no new connection within %v: %w", window, err)))
		}
	})
	// Wake SendMessage callers that caught l failing: they log from now on.
	s.links.Wake()
	if s.cfg.Suspended != nil {
		s.cfg.Suspended(s)
	}
	s.setViableLocked(false, err)
	if l.Outgoing() && l.Dialed != "" {
		s.goNode(func() { s.redial(l.Dialed) })
	}
}

// Suspended reports whether the session waits for a link to resume it.
func (s *Session) Suspended() bool { return s.susp.Suspended() }

// sessionLost builds the error a suspended session fails with. A cause
// that is io.EOF (the peer's host closed the transport) is kept as text
// only: to ReceiveMessage's callers errors.Is(err, io.EOF) means a clean
// close, and a lost session is not one.
func (s *Session) sessionLost(err error) error {
	if errors.Is(err, io.EOF) {
		err = errors.New(err.Error())
	}
	s.txmu.Lock()
	defer s.txmu.Unlock()
	if n := s.tx.Forgotten(); n > 0 {
		err = fmt.Errorf("%w; the %d messages sent before the undelivered ones were not kept for resume (memory budget) and may not have arrived", err, n)
	}
	return s.cfg.Lost(err, s.tx.Pending())
}

// Restart retries at once: a session waiting to connect or to resume
// tries now instead of at its next backoff; a ready session whose send
// link this side dialed drops it and resumes on a new one (no message is
// lost). It does nothing on a session that has ended.
func (s *Session) Restart() {
	s.mu.Lock()
	if s.state.Terminal() {
		s.mu.Unlock()
		return
	}
	suspended := s.susp.Suspended()
	l := s.links.Send()
	s.mu.Unlock()
	s.Kick()
	if !suspended && l != nil && l.Outgoing() && s.resumeOn() {
		l.CloseWith(wire.CloseResume, "restart")
	}
}

// Kick wakes the session's redial or connect retry loop.
func (s *Session) Kick() {
	select {
	case s.retry <- struct{}{}:
	default:
	}
}

// Backoff returns the wait before attempt i (from 0), with jitter.
func Backoff(i int) time.Duration {
	d := 100 * time.Millisecond << min(i, 5)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2)
}

// redial reconnects a suspended session: rounds of the owner's
// RedialRound, addr first, with backoff, until the session resumes or
// ends, or every host answers that nothing listens.
func (s *Session) redial(addr string) {
	for i := 0; ; i++ {
		if !s.susp.Suspended() {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-s.ended:
				cancel()
			case <-ctx.Done():
			}
		}()
		if s.cfg.Redial != nil && s.cfg.Redial(ctx, s) {
			cancel()
			return
		}
		refused, last := s.owner.RedialRound(ctx, addr)
		start := time.Now()
		if !refused && s.susp.Suspended() {
			// The peer may have moved to another address: ask discovery
			// where it is now, for the next round.
			s.owner.Rediscover(ctx)
		}
		cancel()
		if refused && last != nil {
			// Hosts answered and nothing listens: the peer's node is gone.
			s.mu.Lock()
			if s.susp.Suspended() && !s.state.Terminal() {
				s.failLocked(s.sessionLost(fmt.Errorf("the peer no longer listens: %w", last)))
			}
			s.mu.Unlock()
			return
		}
		if !s.susp.Suspended() {
			return
		}
		t := time.NewTimer(max(0, Backoff(i)-time.Since(start)))
		select {
		case <-t.C:
		case <-s.retry:
			t.Stop()
		case <-s.ended:
			t.Stop()
			return
		case <-s.cfg.NodeDone:
			t.Stop()
			return
		}
	}
}

// resumeLocked continues the session on l after the peer's hello said it
// holds peerRecv of our messages: older links go, and l carries a base
// message and everything logged from peerRecv on. s.mu is held.
func (s *Session) resumeLocked(l *Path, peerRecv uint64) error {
	for _, old := range s.links.Clear() {
		go old.Fail(errors.New("nearnet: replaced by a resumed connection"))
	}
	s.txmu.Lock()
	defer s.txmu.Unlock()
	if err := s.tx.AckTo(peerRecv); err != nil {
		return err
	}
	if peerRecv < s.tx.Acked() {
		return &wire.ProtocolError{What: "resume from before what the peer acknowledged"}
	}
	if peerRecv < s.tx.Base() {
		return &forgottenError{from: peerRecv, base: s.tx.Base()}
	}
	s.links.Add(l)
	if l.Peer.Addr != nil {
		s.peer.Addr = l.Peer.Addr // the peer may have moved (a new address)
	}
	s.links.Resume(peerRecv)
	s.promoteLocked(l) // a base message first: holding txmu, no message can come between
	for _, m := range s.tx.Unacked() {
		l.EnqueueResend(m)
	}
	s.susp.End()
	s.setViableLocked(true, nil)
	s.owner.ViabilityChanged(Reconnected, nil)
	return nil
}

// forgottenError ends a session whose peer resumes from a message the log
// forgot (budget.go).
type forgottenError struct{ from, base uint64 }

func (e *forgottenError) Error() string {
	return fmt.Sprintf("session lost: messages %d to %d were not kept for resume (memory budget)", e.from, e.base-1)
}

// Viable reports whether traffic currently gets through.
func (s *Session) Viable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.via.Viable()
}

// PathUnavailable reports that a path beyond the LAN could not be
// prepared for s, and why (internal/icepath); s keeps its path.
func (s *Session) PathUnavailable(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.state.Terminal() {
		s.owner.ViabilityChanged(PathUnavailable, err)
	}
}

// setViableLocked records the current viability and schedules the
// debounced report (Viability). s.mu is held.
func (s *Session) setViableLocked(v bool, err error) {
	if !v && s.cfg.Inviable != nil {
		s.cfg.Inviable(s)
	}
	s.via.Set(v, err, s.clock, s.cfg.ViabilityDebounce, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.state.Terminal() {
			return
		}
		if viable, err, ok := s.via.Due(); ok {
			if viable {
				s.owner.ViabilityChanged(Viable, nil)
			} else {
				s.owner.ViabilityChanged(Inviable, err)
			}
		}
	})
}

// linkViability is called after link l's kaInviable or pathDown changed;
// err is why, if l is now inviable. Viability is read from both flags
// under s.mu, never passed in: the keepalive and the path monitor change
// them concurrently, and a value computed before taking the lock could
// undo the other's newer one (the link stayed inviable after both had
// cleared).
func (s *Session) linkViability(l *Path, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links.Send() == l {
		s.setViableLocked(!l.kaInviable.Load() && !l.pathDown.Load(), err)
	}
}

// PathChanged applies a change of the host's addresses to the session's
// links: up maps each local address to whether its interface is up. A
// link whose local address went away is failed (the session resumes
// elsewhere), one on an interface that went down is inviable until it is
// up again; then the retry loop is woken.
func (s *Session) PathChanged(up map[netip.Addr]bool) {
	for _, l := range s.Paths() {
		ap, err := netip.ParseAddrPort(l.T.LocalAddr().String())
		if err != nil {
			continue
		}
		a := ap.Addr().Unmap()
		if a.IsUnspecified() {
			continue // a QUIC link's socket serves every address; QUIC's idle timeout covers a lost one
		}
		isUp, present := up[a]
		switch {
		case !present && !a.IsLoopback():
			l.Fail(ErrAddrGone)
		case !isUp != l.pathDown.Load():
			l.pathDown.Store(!isUp)
			s.linkViability(l, errNoPath)
		}
	}
	s.Kick()
}

// SetInviable sets or clears both of l's inviability flags (tests).
func (l *Path) SetInviable(keepalive, path bool) {
	l.kaInviable.Store(keepalive)
	l.pathDown.Store(path)
}

// The direct read: a ReceiveMessage that finds the queue empty on a
// single-link session reads the link itself (link.Link.ReadDirect, where
// the reasons are), which asks the session what it needs through the
// methods below. The session lets one caller at a time in (s.direct, which
// also kicks it when its ctx ends) and kicks it when another link joins
// (Attach).

// directLinkLocked returns the link a ReceiveMessage caller may read
// itself: the only link, when no other caller is reading it.
func (s *Session) directLinkLocked() *Path {
	if s.direct.Busy() || s.state.Cur().Kind != Ready {
		return nil
	}
	l, _ := s.links.Only()
	if l != nil && l.Ending() {
		// Its reader winds it up (up to CloseTimeout for a graceful end);
		// reading it directly meanwhile would spin on ErrNotRead.
		return nil
	}
	return l
}

// othersWaiting reports whether another ReceiveMessage caller waits for
// the queue (so reading should not stay with a caller that is leaving).
func (s *Session) othersWaiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx.ReaderWaiting()
}

// busyElsewhere reports whether a direct reader should stop: another link
// takes part, or a message is waiting in the queue.
func (s *Session) busyElsewhere() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.links.Len() != 1 || s.rx.HasQueued()
}

// readWait reports whether the queue has a message or its end for a
// ReceiveMessage caller, or else returns the channel closed when it has.
func (s *Session) readWait() (<-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx.ReaderWait()
}

// takeDirect accounts for message m, numbered seq, that a ReceiveMessage
// caller read itself. It never blocks: the caller is the one who would
// have to make room.
func (s *Session) takeDirect(l *Path, seq uint64, m []byte) link.DirectResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case seq < s.rx.Delivered():
		s.droppedLocked(l, m)
		return link.DirectDuplicate
	case seq > s.rx.Delivered():
		return link.DirectLater
	case s.closed:
		s.droppedLocked(l, m)
		return link.DirectQueued // discarded; ReceiveMessage reports the close
	}
	s.keptLocked(l, m)
	mine := s.rx.TakeDirect(m)
	s.noteDeliveredLocked(len(m))
	if mine {
		s.lendLocked(m)
		return link.DirectMine
	}
	return link.DirectQueued
}

// UpAddrs maps each local address of ifs to whether its interface is up
// (loopback counts as up), for PathChanged.
func UpAddrs(ifs []pathmon.Interface) map[netip.Addr]bool {
	up := map[netip.Addr]bool{}
	for _, ifi := range ifs {
		for _, p := range ifi.Prefixes {
			up[p.Addr()] = ifi.Up() || ifi.Flags&net.FlagLoopback != 0
		}
	}
	return up
}
