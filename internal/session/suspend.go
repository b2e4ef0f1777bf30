package session

import (
	"sync/atomic"
	"time"
)

// Suspension is a session waiting, after its last link broke, for a new
// link to resume it: no longer than a window, after which it is lost.
// Meanwhile the sender keeps logging (Log) and the side that dialed the
// broken link redials.
//
// Begin and End are guarded by the owner's lock; Suspended may be called
// without it (SendMessage and the redial loop do).
type Suspension struct {
	on    atomic.Bool
	timer Timer
}

// Suspended reports whether the session waits for a link to resume it.
func (s *Suspension) Suspended() bool { return s.on.Load() }

// Begin suspends the session. After window, expire runs with no lock held;
// it takes the owner's lock and, if Suspended still, fails the session.
func (s *Suspension) Begin(clock Clock, window time.Duration, expire func()) {
	s.on.Store(true)
	s.timer = clock.AfterFunc(window, expire)
}

// End ends the suspension: the session resumed, or ended.
func (s *Suspension) End() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.on.Store(false)
}
