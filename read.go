package nearnet

import (
	"errors"
	"os"
	"time"

	linkpkg "github.com/nearnet/nearnet/internal/link"
)

// The direct read: a ReceiveMessage that finds the queue empty on a
// single-link Conn reads the link itself (linkpkg.Link.ReadDirect, where
// the reasons are), which asks the Conn what it needs through the methods
// below. The Conn lets one caller at a time in (c.direct, a session.Direct,
// which also kicks it when its ctx ends) and kicks it when another link
// joins (addLink).

// aLongTimeAgo is a deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// errNotRead means a direct read read nothing for the caller: the queue
// may have a message now, or the link ended; the caller looks again.
var errNotRead = linkpkg.ErrNotRead

// directLinkLocked returns the link a ReceiveMessage caller may read
// itself: the only link, when no other caller is reading it.
func (c *Conn) directLinkLocked() *link {
	if c.direct.Busy() || c.state.Cur().Kind != StateReady {
		return nil
	}
	l, _ := c.links.Only()
	return l
}

// othersWaiting reports whether another ReceiveMessage caller waits for
// the queue (so reading should not stay with a caller that is leaving).
func (c *Conn) othersWaiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rx.ReaderWaiting()
}

// busyElsewhere reports whether a direct reader should stop: another link
// takes part, or a message is waiting in the queue.
func (c *Conn) busyElsewhere() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.links.Len() != 1 || c.rx.HasQueued()
}

// readWait reports whether the queue has a message or its end for a
// ReceiveMessage caller, or else returns the channel closed when it has.
func (c *Conn) readWait() (<-chan struct{}, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rx.ReaderWait()
}

// takeDirect accounts for message m, numbered seq, that a ReceiveMessage
// caller read itself. It never blocks: the caller is the one who would
// have to make room.
func (c *Conn) takeDirect(l *link, seq uint64, m []byte) linkpkg.DirectResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case seq < c.rx.Delivered():
		c.droppedLocked(l.Link, m)
		return linkpkg.DirectDuplicate
	case seq > c.rx.Delivered():
		return linkpkg.DirectLater
	case c.closed:
		c.droppedLocked(l.Link, m)
		return linkpkg.DirectQueued // discarded; ReceiveMessage reports the close
	}
	c.keptLocked(l.Link, m)
	mine := c.rx.TakeDirect(m)
	c.noteDeliveredLocked(len(m))
	if mine {
		c.lendLocked(m)
		return linkpkg.DirectMine
	}
	return linkpkg.DirectQueued
}
