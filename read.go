package nearnet

import (
	"context"
	"errors"
	"os"
	"time"
)

// Reading a link, and why two kinds of goroutine do it.
//
// A link's background reader (readLoop) reads frames and queues data
// messages on the Conn, so that pings are answered, closes are seen and the
// receive buffer fills while the application is busy elsewhere. But when
// the application is already waiting in ReceiveMessage, handing each
// message from the reader goroutine to it costs a goroutine wake-up (a
// futex on an otherwise idle CPU), which dominated small round trips.
// So a ReceiveMessage that finds the queue empty on a single-link Conn
// reads the link itself: it takes rmu, interrupting the background reader
// with a read deadline if that one is blocked in a read, and the
// background reader parks. After the caller returns, the background reader
// resumes only if no caller comes back within resumeGrace, so a
// request/response loop never pays for a hand-over.
//
// Interrupting a read with a deadline is safe: crypto/tls keeps a partial
// record across a timeout, and wire.Reader keeps a partial frame.

// resumeGrace is how long reading stays with callers of ReceiveMessage
// after one returns before the background reader takes it back.
const resumeGrace = 2 * time.Millisecond

// aLongTimeAgo is a read deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// readLoop is the background reader.
func (l *link) readLoop() {
	for {
		l.mu.Lock()
		if !l.bgActive {
			// A caller may be waiting for rmu, which we do not hold now.
			select {
			case l.yielded <- struct{}{}:
			default:
			}
		}
		for !l.bgActive && l.end == nil && l.err == nil {
			l.mu.Unlock()
			select {
			case <-l.bgWake:
			case <-l.dead:
			}
			l.mu.Lock()
		}
		end := l.end
		l.mu.Unlock()
		if end != nil {
			l.finish(end)
			return
		}
		l.rmu.Lock()
		l.mu.Lock()
		active := l.bgActive || l.err != nil
		l.mu.Unlock()
		if !active { // a caller took reading over meanwhile
			l.rmu.Unlock()
			continue
		}
		var m []byte
		var seq uint64
		var err error
		if l.stash != nil {
			m, seq, l.stash = l.stash, l.stashSeq, nil
		} else {
			m, seq, err = l.readOne()
		}
		if err != nil && isTimeout(err) {
			l.mu.Lock()
			if l.bgActive && l.err == nil {
				l.clearKickLocked() // stale: whoever kicked no longer needs it
			}
			l.mu.Unlock()
			l.rmu.Unlock()
			continue
		}
		if err != nil {
			l.rmu.Unlock()
			l.finish(err)
			return
		}
		ok := l.c.deliver(l, seq, m)
		l.rmu.Unlock()
		if !ok {
			l.finish(errGracefulEnd)
			return
		}
	}
}

func (l *link) clearKickLocked() {
	if l.kicked {
		l.kicked = false
		l.nc.SetReadDeadline(time.Time{})
	}
}

func (l *link) kickLocked() {
	l.kicked = true
	l.nc.SetReadDeadline(aLongTimeAgo)
}

// resumeBackground gives reading back to the background reader; it runs
// resumeGrace after a caller stopped reading.
func (l *link) resumeBackground() {
	l.mu.Lock()
	l.bgActive = true
	l.mu.Unlock()
	select {
	case l.bgWake <- struct{}{}:
	default:
	}
}

// acquireRead takes l.rmu for a ReceiveMessage caller, asking the
// background reader to yield. It gives up with errNotRead when a message
// gets queued meanwhile (the background reader may be waiting for the
// caller to take it) or the link ends.
func (c *Conn) acquireRead(ctx context.Context, l *link) error {
	l.resume.Stop()
	for {
		if l.rmu.TryLock() {
			l.mu.Lock()
			l.bgActive = false
			l.clearKickLocked()
			ended := l.end != nil || l.err != nil
			l.mu.Unlock()
			// After clearing any kick: a link that joins later kicks again.
			if ended || c.busyElsewhere() {
				l.rmu.Unlock()
				l.resumeBackground() // the caller will wait on the queue
				return errNotRead
			}
			return nil
		}
		l.mu.Lock()
		l.bgActive = false
		if l.err == nil && l.end == nil {
			l.kickLocked()
		}
		l.mu.Unlock()
		c.mu.Lock()
		if c.qh < len(c.q) || c.rerr != nil {
			c.mu.Unlock()
			l.resume.Reset(resumeGrace)
			return errNotRead
		}
		if c.rwait == nil {
			c.rwait = make(chan struct{})
		}
		rch := c.rwait
		c.mu.Unlock()
		select {
		case <-l.yielded:
		case <-rch:
		case <-l.dead:
			return errNotRead
		case <-ctx.Done():
			l.resumeBackground()
			return ctx.Err()
		}
	}
}

// errNotRead means readDirect read nothing for the caller: the queue may
// have a message now, or the link ended; the caller looks again.
var errNotRead = errors.New("nearnet: nothing read")

// readDirect reads the next data message from l in the caller's goroutine
// (see the comment at the top of this file). It returns the message, or
// errNotRead, or ctx's error.
func (c *Conn) readDirect(ctx context.Context, l *link) ([]byte, error) {
	if err := c.acquireRead(ctx, l); err != nil {
		return nil, err
	}
	busy := false // more has arrived than this caller takes
	defer func() {
		l.rmu.Unlock()
		if busy || c.othersWaiting() {
			// A stream of messages, not a request/response exchange: the
			// background reader decodes ahead, in parallel with the caller.
			l.resumeBackground()
		} else {
			l.resume.Reset(resumeGrace)
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for {
		m, seq, err := l.readOne()
		if err != nil {
			if isTimeout(err) {
				l.mu.Lock()
				l.clearKickLocked()
				l.mu.Unlock()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if c.busyElsewhere() {
					// Another link joined (addLink kicked us): messages may
					// now come from it, so wait on the queue like everyone.
					busy = true
					return nil, errNotRead
				}
				continue // a stale kick
			}
			// The link is over: the background reader winds it up.
			l.mu.Lock()
			l.end = err
			l.mu.Unlock()
			select {
			case l.bgWake <- struct{}{}:
			default:
			}
			return nil, errNotRead
		}
		switch c.takeDirect(seq, m) {
		case directMine:
			busy = l.br.Buffered() > 0
			return m, nil
		case directDuplicate:
			continue
		case directQueued:
			return nil, errNotRead
		default:
			// An earlier message is still due from another link: the
			// background reader delivers this one when its turn comes.
			l.stash, l.stashSeq = m, seq
			busy = true
			return nil, errNotRead
		}
	}
}

// watchLocked makes sure that ctx ending interrupts a direct read made
// with it. The registration is kept for the next ReceiveMessage with the
// same ctx (a receive loop usually passes one ctx every time), so that a
// read does not pay for registering and removing a context callback. c.mu
// is held.
func (c *Conn) watchLocked(ctx context.Context) {
	if ctx.Done() == nil || c.watchCtx == ctx {
		return
	}
	c.unwatchLocked()
	c.watchCtx = ctx
	c.watchStop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.direct && c.directCtx == ctx && c.directLink != nil {
			l := c.directLink
			l.mu.Lock()
			l.kickLocked()
			l.mu.Unlock()
		}
	})
}

func (c *Conn) unwatchLocked() {
	if c.watchStop != nil {
		c.watchStop()
		c.watchStop, c.watchCtx = nil, nil
	}
}
