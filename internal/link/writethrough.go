package link

import (
	"time"
)

// Writing a lone message without a goroutine hand-off.
//
// Messages normally leave through the link's writer goroutine, which
// batches whatever queued while its previous write was in the kernel. For
// a message sent while the link is idle, waking that goroutine costs more
// than the write itself, so EnqueueData writes such a message directly
// (writeThrough). It must never block there, because the sender honours
// its ctx only while waiting for queue room: so it is done only where the
// transport offers a transport.WriteThrough (TCP: the connection under
// TLS), which in non-blocking mode hands the kernel what its socket
// buffer takes and keeps the rest as overflow, reporting the whole write
// done. crypto/tls sees a complete write either way. The writer goroutine
// sends any overflow before anything else.

// writeThroughMax bounds the queued bytes a sender writes itself; more is
// left to the writer goroutine, which batches.
const writeThroughMax = 16 << 10

// writeThroughIdle is how long the link must have been quiet for a
// sender to write through. A stream of messages comes faster than this
// and is left to the writer goroutine, which puts many messages in one
// TLS record; a request/response exchange waits at least a round trip
// between sends and writes through.
const writeThroughIdle = 10 * time.Microsecond

// writeThroughLocked writes the queue from the caller's goroutine if the
// link is idle and the queue small; it reports whether it did. l.mu is
// held on entry and on return.
func (l *Link) writeThroughLocked() bool {
	if l.writing || l.closeQueued || l.wc == nil || len(l.buf) > writeThroughMax ||
		time.Since(l.lastWrite) < writeThroughIdle || l.wc.HasOverflow() {
		return false
	}
	b, charge := l.takeBufLocked()
	l.writing = true
	l.mu.Unlock()
	l.wc.SetNonblock(true)
	_, err := l.nc.Write(b)
	pending := l.wc.SetNonblock(false)
	l.mu.Lock()
	l.writing = false
	l.lastWrite = time.Now()
	l.wroteLocked(b, charge, cap(b) <= 2*writeThroughMax)
	if err != nil {
		l.mu.Unlock()
		l.Fail(err)
		l.mu.Lock()
		return true
	}
	if pending || len(l.buf) > 0 || l.closeQueued {
		l.signal() // the writer goroutine takes it from here
	}
	return true
}
