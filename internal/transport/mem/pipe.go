package mem

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// pipeCapacity bounds the bytes one direction of a pipe holds, as a
// socket's buffers do: a writer waits while the reader does not read.
const pipeCapacity = 256 << 10

// buffer is one direction of a pipe: bytes written and not yet read.
type buffer struct {
	id      uint64 // orders the locking of two buffers (failBoth)
	mu      sync.Mutex
	buf     []byte
	eof     bool  // the writer half-closed or closed
	err     error // the reader gets this after the bytes (a reset, a close code)
	changed chan struct{}
}

var bufferIDs atomic.Uint64

func newBuffer() *buffer { return &buffer{id: bufferIDs.Add(1), changed: make(chan struct{})} }

// wakeLocked wakes everyone waiting on the buffer.
func (b *buffer) wakeLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// fail ends the direction: reads return err after the bytes already
// buffered (nil err: discard them too, with net.ErrClosed).
func (b *buffer) fail(err error, discard bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
	if discard {
		b.buf = nil
	}
	b.wakeLocked()
}

// failBoth ends both directions of a pipe with err, both before either's
// reader wakes: a reader woken by the first must not get in before the
// second (its end's reset would otherwise reach the other direction first,
// and the other reader would see that instead of err).
func failBoth(x, y *buffer, err error) {
	if x.id > y.id {
		x, y = y, x // one order for every caller: two cuts cannot deadlock
	}
	for _, b := range []*buffer{x, y} {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.buf = nil
	}
	x.wakeLocked()
	y.wakeLocked()
	y.mu.Unlock()
	x.mu.Unlock()
}

func (b *buffer) closeWrite() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.eof = true
	b.wakeLocked()
}

// deadline is a settable deadline whose expiry wakes waiters.
type deadline struct {
	mu    sync.Mutex
	t     time.Time
	timer *time.Timer
	ch    chan struct{} // closed when the deadline passes
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	select {
	case <-d.ch:
		d.ch = make(chan struct{}) // it had passed: a new one
	default:
	}
	d.t = t
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur <= 0 {
		close(d.ch)
	} else {
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
	}
}

func passed(d *deadline) bool {
	select {
	case <-d.wait():
		return true
	default:
		return false
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// end is one end of a pipe: it reads from rx and writes to tx.
type end struct {
	rx, tx        *buffer
	local, remote net.Addr
	rdl, wdl      *deadline
	closeOnce     sync.Once
	onClose       func()
}

// newPipe returns two connected ends.
func newPipe(a, b net.Addr) (*end, *end) {
	x, y := newBuffer(), newBuffer()
	return &end{rx: x, tx: y, local: a, remote: b, rdl: newDeadline(), wdl: newDeadline()},
		&end{rx: y, tx: x, local: b, remote: a, rdl: newDeadline(), wdl: newDeadline()}
}

func (e *end) Read(p []byte) (int, error) {
	b := e.rx
	if passed(e.rdl) {
		return 0, os.ErrDeadlineExceeded
	}
	for {
		b.mu.Lock()
		if len(b.buf) > 0 {
			n := copy(p, b.buf)
			b.buf = b.buf[n:]
			if len(b.buf) == 0 {
				b.buf = nil
			}
			b.wakeLocked() // room for the writer
			b.mu.Unlock()
			return n, nil
		}
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return 0, err
		}
		if b.eof {
			b.mu.Unlock()
			return 0, io.EOF
		}
		if len(p) == 0 {
			b.mu.Unlock()
			return 0, nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-e.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (e *end) Write(p []byte) (int, error) {
	b := e.tx
	written := 0
	if passed(e.wdl) {
		return 0, os.ErrDeadlineExceeded
	}
	for {
		b.mu.Lock()
		switch {
		case b.err != nil:
			b.mu.Unlock()
			return written, errClosedPipe
		case b.eof:
			b.mu.Unlock()
			return written, errClosedPipe
		}
		if len(p) == 0 {
			b.mu.Unlock()
			return written, nil
		}
		if room := pipeCapacity - len(b.buf); room > 0 {
			k := min(room, len(p))
			b.buf = append(b.buf, p[:k]...)
			p = p[k:]
			written += k
			b.wakeLocked()
			b.mu.Unlock()
			continue
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-e.wdl.wait():
			return written, os.ErrDeadlineExceeded
		}
	}
}

var errClosedPipe = &net.OpError{Op: "write", Net: "mem", Err: net.ErrClosed}

// CloseWrite half-closes: the peer reads EOF after what was written.
func (e *end) CloseWrite() error {
	e.tx.closeWrite()
	return nil
}

// Close ends both directions: the peer reads what was written, then EOF;
// reads and writes here fail.
func (e *end) Close() error {
	e.tx.closeWrite()
	e.rx.fail(net.ErrClosed, true)
	e.closeOnce.Do(func() {
		if e.onClose != nil {
			e.onClose()
		}
	})
	return nil
}

// reset ends both directions at once: the peer's reads fail with err
// (discarding what it has not read), as after a TCP reset.
func (e *end) reset(err error) {
	e.tx.fail(err, true)
	e.rx.fail(net.ErrClosed, true)
	e.closeOnce.Do(func() {
		if e.onClose != nil {
			e.onClose()
		}
	})
}

func (e *end) LocalAddr() net.Addr  { return e.local }
func (e *end) RemoteAddr() net.Addr { return e.remote }

func (e *end) SetDeadline(t time.Time) error {
	e.rdl.set(t)
	e.wdl.set(t)
	return nil
}

func (e *end) SetReadDeadline(t time.Time) error  { e.rdl.set(t); return nil }
func (e *end) SetWriteDeadline(t time.Time) error { e.wdl.set(t); return nil }

var _ net.Conn = (*end)(nil)
