package session

import (
	"slices"
	"time"
)

// fakeClock fires timers only when the test says so.
type fakeClock struct {
	now    time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Duration
	f       func()
	stopped bool
	clock   *fakeClock
}

func (t *fakeTimer) Stop() bool {
	was := !t.stopped
	t.stopped = true
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	was := t.Stop()
	t.at, t.stopped = t.clock.now+d, false
	t.clock.timers = append(t.clock.timers, t)
	return was
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &fakeTimer{at: c.now + d, f: f, clock: c}
	c.timers = append(c.timers, t)
	return t
}

// advance moves time on by d and runs the timers due, in order.
func (c *fakeClock) advance(d time.Duration) {
	c.now += d
	slices.SortStableFunc(c.timers, func(a, b *fakeTimer) int { return int(a.at - b.at) })
	for len(c.timers) > 0 && c.timers[0].at <= c.now {
		t := c.timers[0]
		c.timers = c.timers[1:]
		if !t.stopped {
			t.stopped = true
			t.f()
		}
	}
}
