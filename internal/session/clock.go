package session

import "time"

// Clock starts the session's timers. Real is the time package's; tests
// inject a fake and fire timers by hand, so that a timeout is a step of the
// test, not a sleep.
type Clock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer a Clock started.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// Real is the Clock of time.AfterFunc.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
