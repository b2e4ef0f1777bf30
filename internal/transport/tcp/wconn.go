package tcp

import (
	"net"
	"sync"
	"sync/atomic"
)

// wconn is the TCP connection under TLS, with an optional non-blocking
// mode: in it, Write hands the kernel what the socket buffer takes and
// keeps the rest as overflow, reporting the whole write done, so that a
// link can write a lone message from the sender's goroutine without ever
// blocking it (transport.WriteThrough; internal/link/writethrough.go says
// why). crypto/tls sees a complete write either way. Its Write is called
// by one goroutine at a time: the link's writer, or a write-through.
type wconn struct {
	net.Conn
	nb nbWriter // nil where non-blocking writes are not available

	mu       sync.Mutex // guards overflow and nonblock
	overflow []byte
	nonblock bool

	writes atomic.Int64 // Write calls, for tests of batching

	batching bool   // collecting writes (batch.go); guarded by mu
	batch    []byte // what was collected; guarded by mu

	// Read-ahead (batch.go), used by the one goroutine that reads.
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

// SetNonblock switches the mode; it reports whether overflow is waiting
// for the writer goroutine.
func (w *wconn) SetNonblock(on bool) (pending bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nonblock = on
	return len(w.overflow) > 0
}

// HasOverflow reports whether bytes wait for the writer goroutine.
func (w *wconn) HasOverflow() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.overflow) > 0
}

// Flush writes the overflow, blocking.
func (w *wconn) Flush() error {
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

// Writes counts Write calls, for tests of batching.
func (w *wconn) Writes() int64 { return w.writes.Load() }
