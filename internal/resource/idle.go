package resource

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// idleReader reads from the sender's stream and drops the transfer when
// a Read waits longer than d for a byte: it then unblocks the Read (the
// stream's read deadline set in the past, or the stream closed if it has
// none) and fired reports true. Only time spent inside Read counts, so a
// receiver busy writing to a slow disk never blames the sender.
//
// One timer per transfer, re-armed from its own callback: a Read costs
// two atomic stores, not a deadline change.
type idleReader struct {
	r       io.Reader
	d       time.Duration
	base    time.Time
	unblock func()

	since atomic.Int64 // when the pending Read began, in ns after base plus 1; 0 if none
	fired atomic.Bool

	mu      sync.Mutex // guards t and stopped against the callback
	t       *time.Timer
	stopped bool
}

func newIdleReader(stream io.Reader, d time.Duration) *idleReader {
	ir := &idleReader{r: stream, d: d, base: time.Now()}
	ir.unblock = func() {
		if rd, ok := stream.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = rd.SetReadDeadline(time.Unix(1, 0))
			return
		}
		if c, ok := stream.(io.Closer); ok {
			_ = c.Close()
		}
	}
	ir.mu.Lock()
	ir.t = time.AfterFunc(d, ir.check)
	ir.mu.Unlock()
	return ir
}

func (ir *idleReader) now() int64 { return int64(time.Since(ir.base)) + 1 }

func (ir *idleReader) Read(p []byte) (int, error) {
	if ir.fired.Load() {
		return 0, errIdle
	}
	ir.since.Store(ir.now())
	n, err := ir.r.Read(p)
	ir.since.Store(0)
	if err != nil && ir.fired.Load() {
		err = errIdle
	}
	return n, err
}

// errIdle is what a Read returns once the deadline passed; accept turns
// it into a *DroppedError.
var errIdle = &idleErr{}

type idleErr struct{}

func (*idleErr) Error() string   { return "nearnet: no bytes from the sender within the idle deadline" }
func (*idleErr) Timeout() bool   { return true }
func (*idleErr) Temporary() bool { return false }

// check runs when the timer fires: it drops the transfer if the pending
// Read has waited d, and otherwise re-arms for the moment it would have.
func (ir *idleReader) check() {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	if ir.stopped {
		return
	}
	next := ir.d
	if s := ir.since.Load(); s != 0 {
		waited := time.Duration(ir.now() - s)
		if waited >= ir.d {
			ir.fired.Store(true)
			ir.stopped = true
			ir.unblock()
			return
		}
		next = ir.d - waited
	}
	ir.t.Reset(next)
}

// stop ends the watch; a Read after it is not watched. It reports whether
// the deadline had passed.
func (ir *idleReader) stop() bool {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	ir.stopped = true
	ir.t.Stop()
	return ir.fired.Load()
}
