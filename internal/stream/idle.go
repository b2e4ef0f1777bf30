package stream

import (
	"sync/atomic"
	"time"
)

// ErrIdle is the error of a stream ended by its idle timeout. It is a
// timeout: errors.As to net.Error says so.
var ErrIdle error = idleError{}

type idleError struct{}

func (idleError) Error() string   { return "nearnet: stream idle longer than its idle timeout" }
func (idleError) Timeout() bool   { return true }
func (idleError) Temporary() bool { return false }

// idle is a stream's idle timeout; a zero value is off.
type idle struct {
	d       atomic.Int64 // the timeout, ns; 0: off
	last    atomic.Int64 // when bytes last moved, ns since the stream began
	expired atomic.Bool
	start   time.Time   // when the stream was made; never changes
	timer   *time.Timer // guarded by Stream.mu
}

// SetIdleTimeout ends the stream when no byte has been read or written
// for d (d <= 0: off); calling it again restarts the count.
func (s *Stream) SetIdleTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle.timer != nil {
		s.idle.timer.Stop()
		s.idle.timer = nil
	}
	if d <= 0 {
		s.idle.d.Store(0)
		return
	}
	s.idle.d.Store(int64(d))
	s.idle.touch()
	s.idle.timer = time.AfterFunc(d, s.checkIdle)
}

// touch records that bytes moved; only with a timeout set.
func (i *idle) touch() {
	if i.d.Load() != 0 {
		i.last.Store(int64(time.Since(i.start)))
	}
}

// checkIdle runs when the timeout may have passed: it ends the stream, or
// waits for the rest of the timeout after the last activity.
func (s *Stream) checkIdle() {
	s.mu.Lock()
	d := time.Duration(s.idle.d.Load())
	if d == 0 || s.closed {
		s.mu.Unlock()
		return
	}
	quiet := time.Since(s.idle.start) - time.Duration(s.idle.last.Load())
	if quiet < d {
		s.idle.timer = time.AfterFunc(d-quiet, s.checkIdle)
		s.mu.Unlock()
		return
	}
	s.idle.expired.Store(true)
	s.mu.Unlock()
	s.Abort()
}
