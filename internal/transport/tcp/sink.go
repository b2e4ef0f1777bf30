package tcp

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// streamWriter is a stream's write side: Write copies into a ring of
// Config.StreamBuffer bytes and one goroutine writes the ring to the
// connection.
//
// Why not write to the tls.Conn directly: crypto/tls makes any write error
// permanent, a timeout included, because a record may be half written. A
// net.Conn must survive a write deadline (nettest.TestConn checks it), and
// an application must be able to unblock a Write with SetWriteDeadline and
// go on. So the deadline bounds the wait for room in the ring, and the
// network write itself never has one. The ring is also the configured bound
// on what a stream holds, and the copy into it costs far less than the
// encryption.
type streamWriter struct {
	nc    net.Conn // the TLS (or TCP) connection
	batch *wconn   // under nc, collecting its records (batch.go); nil without TLS
	raw   net.Conn // TCP under it, for CloseWrite and the close bound
	local net.Addr
	peer  net.Addr
	onEnd func() // called once the writer goroutine has closed nc (Close)
	grace time.Duration

	mu       sync.Mutex // guards everything below
	ring     []byte
	head     int           // first byte not yet written
	n        int           // bytes in the ring, the writer's segment included
	err      error         // the writer failed; sticky
	closed   bool          // Close called: no more writes; flush, then close nc
	shut     bool          // CloseWrite called: flush, then half-close
	aborted  bool          // drop what is queued
	deadline time.Time     // write deadline
	timer    *time.Timer   // fires at the deadline to wake waiters
	room     chan struct{} // closed when room appears, the deadline changes, or the writer ends; nil if nobody waits
	work     chan struct{} // cap 1: the writer has something to do
	done     chan struct{} // closed when the writer goroutine returns
}

func newStreamWriter(nc, raw net.Conn, size int, grace time.Duration, onEnd func()) *streamWriter {
	w := &streamWriter{
		nc:    nc,
		batch: batcherOf(nc),
		raw:   raw,
		local: nc.LocalAddr(),
		peer:  nc.RemoteAddr(),
		onEnd: onEnd,
		grace: grace,
		ring:  make([]byte, size),
		work:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	go w.loop()
	return w
}

var errWriteAfterCloseWrite = errors.New("nearnet: write after CloseWrite")

func (w *streamWriter) opErr(err error) error {
	return &net.OpError{Op: "write", Net: "nearnet", Source: w.local, Addr: w.peer, Err: err}
}

// wakeLocked tells the goroutines waiting in Write to look again.
func (w *streamWriter) wakeLocked() {
	if w.room != nil {
		close(w.room)
		w.room = nil
	}
}

func (w *streamWriter) signal() {
	select {
	case w.work <- struct{}{}:
	default:
	}
}

func (w *streamWriter) Write(p []byte) (int, error) {
	written := 0
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		switch {
		case w.closed:
			return written, w.opErr(net.ErrClosed)
		case w.err != nil:
			return written, w.opErr(w.err)
		case w.shut:
			return written, w.opErr(errWriteAfterCloseWrite)
		case !w.deadline.IsZero() && !time.Now().Before(w.deadline):
			return written, w.opErr(os.ErrDeadlineExceeded)
		}
		if len(p) == 0 {
			return written, nil
		}
		size := len(w.ring)
		if free := size - w.n; free > 0 {
			k := min(free, len(p))
			tail := (w.head + w.n) % size
			c := copy(w.ring[tail:], p[:k])
			copy(w.ring, p[c:k])
			w.n += k
			written += k
			p = p[k:]
			w.signal()
			continue
		}
		if w.room == nil {
			w.room = make(chan struct{})
		}
		room := w.room
		w.mu.Unlock()
		<-room
		w.mu.Lock()
	}
}

// Done is closed when the writer goroutine has returned.
func (w *streamWriter) Done() <-chan struct{} { return w.done }

// SetDeadline sets the write deadline.
func (w *streamWriter) SetDeadline(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = t
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.wakeLocked()
	if !t.IsZero() {
		if d := time.Until(t); d > 0 {
			w.timer = time.AfterFunc(d, func() {
				w.mu.Lock()
				w.wakeLocked()
				w.mu.Unlock()
			})
		}
	}
}

// CloseWrite sends what is queued, then half-closes: the peer reads EOF.
func (w *streamWriter) CloseWrite() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.opErr(net.ErrClosed)
	}
	w.shut = true
	w.wakeLocked()
	w.signal()
	return nil
}

// Close sends what is queued (for at most the grace period) and closes
// the connection; abort drops what is queued instead.
func (w *streamWriter) Close(abort bool) {
	w.mu.Lock()
	if w.closed && !abort {
		w.mu.Unlock()
		return
	}
	w.closed = true
	if abort {
		w.aborted = true
	}
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.wakeLocked()
	w.mu.Unlock()
	if abort {
		w.raw.Close() // unblocks a network write in progress
	} else {
		// Bound the flush: a peer that no longer reads must not keep the
		// connection forever.
		w.raw.SetWriteDeadline(time.Now().Add(w.grace))
	}
	w.signal()
}

func (w *streamWriter) loop() {
	defer close(w.done)
	halfClosed := false
	for {
		w.mu.Lock()
		for w.n == 0 && !w.closed && (!w.shut || halfClosed) && w.err == nil {
			w.mu.Unlock()
			<-w.work
			w.mu.Lock()
		}
		if w.aborted || w.err != nil || (w.n == 0 && w.closed) {
			w.mu.Unlock()
			w.end()
			return
		}
		if w.n == 0 { // shut, not yet half-closed
			w.mu.Unlock()
			halfClosed = true
			if err := closeWrite(w.nc); err != nil {
				w.fail(err)
			}
			continue
		}
		seg := w.ring[w.head:min(w.head+w.n, len(w.ring))]
		w.mu.Unlock()
		_, err := w.write(seg)
		w.mu.Lock()
		w.head = (w.head + len(seg)) % len(w.ring)
		w.n -= len(seg)
		w.wakeLocked()
		w.mu.Unlock()
		if err != nil {
			w.fail(err)
		}
	}
}

// write writes seg to the connection, in batches of TLS records.
func (w *streamWriter) write(seg []byte) (int, error) {
	if w.batch == nil {
		return w.nc.Write(seg)
	}
	w.batch.startBatch()
	n, err := w.nc.Write(seg)
	if ferr := w.batch.endBatch(); err == nil {
		err = ferr
	}
	return n, err
}

func (w *streamWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.n = 0
	w.wakeLocked()
	w.mu.Unlock()
}

// end closes the connection if the stream is closed; a failed writer
// leaves that to Close.
func (w *streamWriter) end() {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if !closed {
		// Failed: wait for Close to release the connection.
		<-w.work
		for {
			w.mu.Lock()
			closed = w.closed
			w.mu.Unlock()
			if closed {
				break
			}
			<-w.work
		}
	}
	w.nc.Close()
	if w.onEnd != nil {
		w.onEnd()
	}
}

// closeWrite half-closes: with TLS, a close_notify alert (TLS 1.3 allows
// the other direction to go on); without, the TCP FIN. The TCP connection
// under TLS stays open both ways, because some proxies end a tunnel at the
// first FIN.
func closeWrite(nc net.Conn) error {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("nearnet: this connection cannot half-close")
}
