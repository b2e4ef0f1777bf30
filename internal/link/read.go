package link

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

// Reading a link, and why two kinds of goroutine do it.
//
// A link's background reader (readLoop) reads frames and hands data
// messages to the Handler, so that pings are answered, closes are seen and
// the owner's receive buffer fills while the application is busy
// elsewhere. But when the application is already waiting for a message,
// handing each message from the reader goroutine to it costs a goroutine
// wake-up (a futex on an otherwise idle CPU), which dominated small round
// trips. So a receiver that finds the owner's queue empty on a single-link
// session reads the link itself (ReadDirect): it takes rmu, interrupting
// the background reader with a read deadline if that one is blocked in a
// read, and the background reader parks. After the caller returns, the
// background reader resumes only if no caller comes back within
// resumeGrace, so a request/response loop never pays for a hand-over.
//
// Interrupting a read with a deadline is safe: crypto/tls keeps a partial
// record across a timeout, and wire.Reader keeps a partial frame.

// resumeGrace is how long reading stays with direct readers after one
// returns before the background reader takes it back.
const resumeGrace = 2 * time.Millisecond

// aLongTimeAgo is a read deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// readLoop is the background reader.
func (l *Link) readLoop() {
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
		if err == wire.ErrNoRoom {
			ok := l.waitRoom() // holding rmu: no one could read the link meanwhile
			l.rmu.Unlock()
			if !ok {
				l.finish(net.ErrClosed) // failed meanwhile: finish reports why
				return
			}
			continue
		}
		if err != nil {
			l.rmu.Unlock()
			l.finish(err)
			return
		}
		ok := l.h.Deliver(seq, m)
		l.rmu.Unlock()
		if !ok {
			l.finish(ErrGracefulEnd)
			return
		}
	}
}

func (l *Link) clearKickLocked() {
	if l.kicked {
		l.kicked = false
		l.nc.SetReadDeadline(time.Time{})
	}
}

func (l *Link) kickLocked() {
	l.kicked = true
	l.nc.SetReadDeadline(aLongTimeAgo)
}

// Kick interrupts a direct read in progress with a read deadline: its ctx
// ended, or another link joined the session. The reader clears it.
func (l *Link) Kick() {
	l.mu.Lock()
	l.kickLocked()
	l.mu.Unlock()
}

// resumeBackground gives reading back to the background reader; it runs
// resumeGrace after a caller stopped reading.
func (l *Link) resumeBackground() {
	l.mu.Lock()
	l.bgActive = true
	l.mu.Unlock()
	select {
	case l.bgWake <- struct{}{}:
	default:
	}
}

// acquireRead takes l.rmu for a direct reader, asking the background
// reader to yield. It gives up with ErrNotRead when a message gets queued
// meanwhile (the background reader may be waiting for the caller to take
// it) or the link ends.
func (l *Link) acquireRead(ctx context.Context) error {
	l.resume.Stop()
	for {
		if l.rmu.TryLock() {
			l.mu.Lock()
			l.bgActive = false
			l.clearKickLocked()
			ended := l.end != nil || l.err != nil
			l.mu.Unlock()
			// After clearing any kick: a link that joins later kicks again.
			if ended || l.h.BusyElsewhere() {
				l.rmu.Unlock()
				l.resumeBackground() // the caller will wait on the queue
				return ErrNotRead
			}
			return nil
		}
		l.mu.Lock()
		l.bgActive = false
		if l.err == nil && l.end == nil {
			l.kickLocked()
		}
		l.mu.Unlock()
		rch, ready := l.h.ReadWait()
		if ready {
			l.resume.Reset(resumeGrace)
			return ErrNotRead
		}
		select {
		case <-l.yielded:
		case <-rch:
		case <-l.dead:
			return ErrNotRead
		case <-ctx.Done():
			l.resumeBackground()
			return ctx.Err()
		}
	}
}

// Ending reports whether reading this link is over (its end was read, or
// it failed) though the owner may not have heard yet: a direct reader
// would get ErrNotRead at once, so a receiver waits on the queue instead.
func (l *Link) Ending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end != nil || l.err != nil
}

// ReadDirect reads the next data message in the caller's goroutine (see
// the comment at the top of this file), for a receiver that found the
// owner's queue empty. It returns the message, or ErrNotRead (look at the
// queue again), or ctx's error. The owner lets one caller at a time in,
// and interrupts it with Kick when ctx ends.
func (l *Link) ReadDirect(ctx context.Context) ([]byte, error) {
	if err := l.acquireRead(ctx); err != nil {
		return nil, err
	}
	busy := false // more has arrived than this caller takes
	defer func() {
		l.rmu.Unlock()
		if busy || l.h.OthersWaiting() {
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
		if err == wire.ErrNoRoom {
			// The budget refused the next message: the background reader
			// waits for room, and the caller on the queue.
			busy = true
			return nil, ErrNotRead
		}
		if err != nil {
			if isTimeout(err) {
				l.mu.Lock()
				l.clearKickLocked()
				l.mu.Unlock()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if l.h.BusyElsewhere() {
					// Another link joined (the owner kicked us): messages
					// may now come from it, so wait on the queue like
					// everyone.
					busy = true
					return nil, ErrNotRead
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
			return nil, ErrNotRead
		}
		switch l.h.TakeDirect(seq, m) {
		case DirectMine:
			busy = l.br.Buffered() > 0
			return m, nil
		case DirectDuplicate:
			continue
		case DirectQueued:
			return nil, ErrNotRead
		default:
			// An earlier message is still due from another link: the
			// background reader delivers this one when its turn comes.
			l.stash, l.stashSeq = m, seq
			busy = true
			return nil, ErrNotRead
		}
	}
}
