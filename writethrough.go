package nearnet

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Writing a lone message without a goroutine hand-off.
//
// Messages normally leave through the link's writer goroutine, which
// batches whatever queued while its previous write was in the kernel. For
// a message sent while the link is idle, waking that goroutine costs more
// than the write itself, so SendMessage writes such a message directly
// (writeThrough). It must never block there, because SendMessage honours
// its ctx only while waiting for queue room: so the TCP connection under
// TLS is a wconn, which in non-blocking mode hands the kernel what its
// socket buffer takes and keeps the rest as overflow, reporting the whole
// write done. crypto/tls sees a complete write either way. The writer
// goroutine sends any overflow before anything else.

// writeThroughMax bounds the queued bytes a SendMessage writes itself;
// more is left to the writer goroutine, which batches.
const writeThroughMax = 16 << 10

// writeThroughIdle is how long the link must have been quiet for a
// SendMessage to write through. A stream of messages comes faster than
// this and is left to the writer goroutine, which puts many messages in
// one TLS record; a request/response exchange waits at least a round trip
// between sends and writes through.
const writeThroughIdle = 10 * time.Microsecond

// wconn is the TCP connection under TLS, with an optional non-blocking
// mode (see above). Its Write is called by one goroutine at a time: the
// holder of link.writing.
type wconn struct {
	net.Conn
	nb nbWriter // nil where non-blocking writes are not available

	mu       sync.Mutex // guards overflow and nonblock
	overflow []byte
	nonblock bool

	writes atomic.Int64 // Write calls, for tests of batching

	batching bool   // collecting writes (streamconn.go); guarded by mu
	batch    []byte // what was collected; guarded by mu

	// Read-ahead (streamconn.go), used by the one goroutine that reads.
	raSize int    // 0: off
	ra     []byte // read ahead; ra[raPos:] not yet returned
	raPos  int
}

func newWConn(c net.Conn) *wconn {
	return &wconn{Conn: c, nb: newNBWriter(c)}
}

func (w *wconn) Write(p []byte) (int, error) {
	w.writes.Add(1)
	w.mu.Lock()
	if w.batching {
		defer w.mu.Unlock()
		return w.batchLocked(p)
	}
	nonblock := w.nonblock
	if !nonblock && len(w.overflow) > 0 {
		o := w.overflow
		w.overflow = nil
		w.mu.Unlock()
		if _, err := w.Conn.Write(o); err != nil {
			return 0, err
		}
		w.mu.Lock()
	}
	if !nonblock {
		w.mu.Unlock()
		return w.Conn.Write(p)
	}
	defer w.mu.Unlock()
	if len(w.overflow) > 0 {
		w.overflow = append(w.overflow, p...) // keep the order
		return len(p), nil
	}
	n, err := w.nb.tryWrite(p)
	if err != nil {
		return n, err
	}
	if n < len(p) {
		w.overflow = append(w.overflow, p[n:]...)
	}
	return len(p), nil
}

// setNonblock switches the mode; it reports whether overflow is waiting
// for the writer goroutine.
func (w *wconn) setNonblock(on bool) (pending bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nonblock = on
	return len(w.overflow) > 0
}

// hasOverflow reports whether bytes wait for the writer goroutine.
func (w *wconn) hasOverflow() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.overflow) > 0
}

// flush writes the overflow, blocking.
func (w *wconn) flush() error {
	w.mu.Lock()
	o := w.overflow
	w.overflow = nil
	w.mu.Unlock()
	if len(o) == 0 {
		return nil
	}
	_, err := w.Conn.Write(o)
	return err
}

// nbWriter writes to a socket without waiting for room.
type nbWriter interface {
	tryWrite(p []byte) (int, error)
}

// writeThroughLocked writes the queue from the caller's goroutine if the
// link is idle and the queue small; it reports whether it did. l.mu is
// held on entry and on return.
func (l *link) writeThroughLocked() bool {
	if l.writing || l.closeQueued || l.wc == nil || l.wc.nb == nil || len(l.buf) > writeThroughMax ||
		time.Since(l.lastWrite) < writeThroughIdle || l.wc.hasOverflow() {
		return false
	}
	b := l.buf
	l.buf, l.spare = l.spare[:0], nil
	l.writing = true
	l.mu.Unlock()
	l.wc.setNonblock(true)
	_, err := l.nc.Write(b)
	pending := l.wc.setNonblock(false)
	l.mu.Lock()
	l.writing = false
	l.lastWrite = time.Now()
	if cap(b) <= 2*writeThroughMax {
		l.spare = b[:0]
	}
	if err != nil {
		l.mu.Unlock()
		l.fail(err)
		l.mu.Lock()
		return true
	}
	if pending || len(l.buf) > 0 || l.closeQueued {
		l.signal() // the writer goroutine takes it from here
	}
	return true
}
