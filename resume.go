package nearnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/wire"
)

// Session resume (PROTOCOL.md, "Session resume").
//
// Data messages are numbered per Conn. The receiver acknowledges what it
// holds (ack messages: a count), and the sender keeps every message until
// it is acknowledged (txLog). When the transport connection breaks without
// a close frame, the Conn is suspended instead of failed: it stays ready
// but inviable, SendMessage keeps logging, and the side that dialed the
// broken link redials. The hellos of the new link carry each side's count
// of messages received; each side sends a base message with the peer's
// count and then every logged message from there. Duplicates cannot
// occur: numbering continues. If no link comes within ResumeWindow, the
// Conn fails with a SessionLostError listing the messages never
// acknowledged.

// SessionLostError is the error of a connection whose transport broke and
// did not come back within Config.ResumeWindow, or whose peer no longer
// had the session. Undelivered holds, in the order they were sent, the
// messages the peer never acknowledged: the application decides whether
// to send them again on a new connection. Acks trail deliveries by at most
// 20 ms, so the first of them may have arrived just before the break;
// every message not listed did arrive.
type SessionLostError struct {
	Err         error // why the last transport connection ended
	Undelivered [][]byte
}

func (e *SessionLostError) Error() string {
	return fmt.Sprintf("nearnet: connection lost and not resumed (%d messages not delivered): %v", len(e.Undelivered), e.Err)
}

func (e *SessionLostError) Unwrap() error { return e.Err }

// ViabilityKind says what happened to a connection's path.
type ViabilityKind int

const (
	Inviable    ViabilityKind = iota // no traffic gets through (keepalives fail, the interface or address went away, the transport broke)
	Viable                           // traffic gets through again
	Reconnected                      // the session resumed on a new transport connection
)

func (k ViabilityKind) String() string {
	switch k {
	case Inviable:
		return "inviable"
	case Viable:
		return "viable"
	case Reconnected:
		return "reconnected"
	}
	return fmt.Sprintf("ViabilityKind(%d)", int(k))
}

// ViabilityEvent is reported through Config.OnViability.
type ViabilityEvent struct {
	Kind ViabilityKind
	Err  error    // why it became inviable, if known
	Path PathInfo // for Reconnected: the path the session now runs on (ice.go)
}

// resumeOn reports whether the session can resume: configured here, and
// the peer does it (its hello names its boot; other WebSocket clients
// send no acks and expect none).
func (c *Conn) resumeOn() bool { return c.n.cfg.ResumeWindow > 0 && c.peerResumes.Load() }

// txLimit bounds the log: twice the send buffer plus room for acks to
// arrive, so a steady stream never waits for them.
func (c *Conn) txLimit() int { return 2*c.n.cfg.SendBuffer + 256<<10 }

// noteDeliveredLocked counts a message taken into the Conn for the next
// ack (session.Acks). c.mu is held.
func (c *Conn) noteDeliveredLocked(size int) {
	if c.resumeOn() && c.acks.Note(size, session.Real, c.ackFire) {
		c.sendAckLocked()
	}
}

// ackFireFunc makes c.ackFire, which sends the delayed ack. It is made once,
// in newConn, so that noteDeliveredLocked passes it without allocating.
func (c *Conn) ackFireFunc() func() {
	return func() {
		c.mu.Lock()
		c.sendAckLocked()
		c.mu.Unlock()
	}
}

func (c *Conn) sendAckLocked() {
	delivered := c.rx.Delivered()
	if !c.acks.Due(delivered) {
		return
	}
	l := c.links.Send()
	if l == nil {
		return // the resume hello carries the count
	}
	if l.Enqueue(wire.OpBinary, 0, wire.AppendAck(nil, delivered)) {
		c.acks.Sent(delivered)
	}
}

// acked takes the peer's ack.
func (c *Conn) acked(n uint64) error {
	c.txmu.Lock()
	defer c.txmu.Unlock()
	return c.tx.AckTo(n)
}

// resumable reports whether a link that ended with err (no close frame)
// leaves the session worth resuming: the network or the peer's host ended
// the transport. Bad input from the peer (a protocol error, an oversized
// message, a TLS failure) ends the session.
func resumable(err error) bool {
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, errDropped, errAddrGone, os.ErrDeadlineExceeded,
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

// errDropped ends a link whose peer stayed silent for DropTime.
var errDropped = errors.New("nearnet: peer silent for DropTime; transport dropped")

// suspendLocked keeps the Conn through the loss of its last link l. c.mu
// is held.
func (c *Conn) suspendLocked(l *link, err error, window time.Duration) {
	c.susp.Begin(session.Real, window, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.susp.Suspended() && !c.state.Terminal() {
			c.failLocked(c.sessionLost(fmt.Errorf("no new connection within %v: %w", window, err)))
		}
	})
	// Wake SendMessage callers that caught l failing: they log from now on.
	c.links.Wake()
	c.n.iceSuspended(c)
	c.setViableLocked(false, err)
	if l.Outgoing() && l.dialed != "" {
		c.n.wg.Add(1)
		go c.redial(l.dialed)
	}
}

// sessionLost builds the error a suspended Conn fails with. A cause that
// is io.EOF (the peer's host closed the transport) is kept as text only:
// to ReceiveMessage's callers errors.Is(err, io.EOF) means a clean close,
// and a lost session is not one.
func (c *Conn) sessionLost(err error) error {
	if errors.Is(err, io.EOF) {
		err = errors.New(err.Error())
	}
	c.txmu.Lock()
	defer c.txmu.Unlock()
	return &SessionLostError{Err: err, Undelivered: c.tx.Pending()}
}

// Restart retries at once: a connection waiting to connect or to resume
// tries now instead of at its next backoff; a ready connection that
// dialed drops its transport connection and resumes on a new one (no
// message is lost). It does nothing on a connection that has ended.
func (c *Conn) Restart() {
	c.mu.Lock()
	if c.state.Terminal() {
		c.mu.Unlock()
		return
	}
	suspended := c.susp.Suspended()
	l := c.links.Send()
	c.mu.Unlock()
	c.kick()
	if !suspended && l != nil && l.Outgoing() && c.resumeOn() {
		l.CloseWith(wire.CloseResume, "restart")
	}
}

// kick wakes the Conn's redial or connect retry loop.
func (c *Conn) kick() {
	select {
	case c.retry <- struct{}{}:
	default:
	}
}

// backoff returns the wait before attempt i (from 0), with jitter.
func backoff(i int) time.Duration {
	d := 100 * time.Millisecond << min(i, 5)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2)
}

// redial reconnects a suspended Conn: addr first, then any address
// discovery knows for the peer, until the session resumes or ends.
func (c *Conn) redial(addr string) {
	defer c.n.wg.Done()
	for i := 0; ; i++ {
		if !c.susp.Suspended() {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-c.ended:
				cancel()
			case <-ctx.Done():
			}
		}()
		refused := true
		var last error
		if c.n.redialICE(ctx, c) {
			cancel()
			return
		}
		for _, a := range c.n.addrsOf(c.peer.ID, addr) {
			l, err := c.n.dialResume(ctx, a, c)
			if err != nil {
				c.n.cfg.Logger.Debug("nearnet: resume attempt failed", "peer", c.peer.ID.Short(), "addr", a, "err", err)
				refused = refused && errors.Is(err, syscall.ECONNREFUSED)
				last = err
				continue
			}
			refused = false
			c.n.attach(l)
			break
		}
		start := time.Now()
		if !refused && c.susp.Suspended() {
			// The peer may have moved to another address: ask discovery
			// where it is now, for the next round.
			c.n.rediscover(ctx, c.peer.ID)
		}
		cancel()
		if refused && last != nil {
			// Hosts answered and nothing listens: the peer's node is gone.
			c.mu.Lock()
			if c.susp.Suspended() && !c.state.Terminal() {
				c.failLocked(c.sessionLost(fmt.Errorf("the peer no longer listens: %w", last)))
			}
			c.mu.Unlock()
			return
		}
		if !c.susp.Suspended() {
			return
		}
		t := time.NewTimer(max(0, backoff(i)-time.Since(start)))
		select {
		case <-t.C:
		case <-c.retry:
			t.Stop()
		case <-c.ended:
			t.Stop()
			return
		case <-c.n.done:
			t.Stop()
			return
		}
	}
}

// rediscoverTime bounds the browse of one redial round.
const rediscoverTime = time.Second

// rediscover browses for peer id until it is found, ctx ends or
// rediscoverTime has passed; Browse records what it finds for addrsOf. A
// Browse the application runs keeps those current too, but a node that
// only dialed has none. Discovery does not cross proxies: with one, the
// peer's address cannot change under us.
func (n *Node) rediscover(ctx context.Context, id PeerID) {
	if n.cfg.Proxy != "" || n.cfg.ProxyFromEnvironment {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, rediscoverTime)
	defer cancel()
	n.Browse(ctx, func(e BrowseEvent) {
		if e.Kind != Lost && e.ID == id {
			cancel()
		}
	})
}

// addrsOf returns first, then the addresses discovery has for peer id.
func (n *Node) addrsOf(id PeerID, first string) []string {
	out := []string{first}
	n.mu.Lock()
	a, ok := n.adverts[id]
	n.mu.Unlock()
	if ok {
		for _, ip := range a.Addrs {
			s := net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// resumeLocked continues the session on l after the peer's hello said it
// holds peerRecv of our messages: older links go, and l carries a base
// message and everything logged from peerRecv on. c.mu is held.
func (c *Conn) resumeLocked(l *link, peerRecv uint64) error {
	for _, old := range c.links.Clear() {
		go old.Fail(errors.New("nearnet: replaced by a resumed connection"))
	}
	c.txmu.Lock()
	defer c.txmu.Unlock()
	if err := c.tx.AckTo(peerRecv); err != nil {
		return err
	}
	if peerRecv < c.tx.Base() {
		return &wire.ProtocolError{What: "resume from before what the peer acknowledged"}
	}
	c.links.Add(l)
	if l.peer.Addr != nil {
		c.peer.Addr = l.peer.Addr // the peer may have moved (a new address)
	}
	c.links.Resume(peerRecv)
	c.promoteLocked(l) // a base message first: holding txmu, no message can come between
	for _, m := range c.tx.Unacked() {
		l.EnqueueResend(m)
	}
	c.susp.End()
	c.setViableLocked(true, nil)
	c.reportLocked(ViabilityEvent{Kind: Reconnected, Path: c.n.pathOf(l)})
	return nil
}
