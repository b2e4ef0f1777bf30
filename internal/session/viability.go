package session

import (
	"context"
	"time"

	"github.com/nearnet/nearnet/pathmon"
)

// Viability is whether traffic gets through a session, and the debounced
// report of its changes: a change is reported only if it still holds after
// the debounce, so a blip reports nothing. The zero value is viable, and
// reported so.
//
// A Viability is not safe for concurrent use: its owner's lock guards it.
type Viability struct {
	inviable         bool
	reportedInviable bool
	err              error // why it became inviable
	timer            Timer
}

// Viable reports the current viability.
func (v *Viability) Viable() bool { return !v.inviable }

// Set records the current viability and, if it changed, restarts the
// debounce: after d, fire runs (with no lock held) and should take the
// owner's lock and call Due.
func (v *Viability) Set(viable bool, err error, clock Clock, d time.Duration, fire func()) {
	if v.inviable == !viable {
		return
	}
	v.inviable, v.err = !viable, err
	if v.timer != nil {
		v.timer.Stop()
	}
	v.timer = clock.AfterFunc(d, fire)
}

// Due reports the change to report once the debounce has passed, if the
// viability differs from what was last reported, and marks it reported.
func (v *Viability) Due() (viable bool, err error, ok bool) {
	if v.inviable == v.reportedInviable {
		return false, nil, false
	}
	v.reportedInviable = v.inviable
	if v.inviable {
		return false, v.err, true
	}
	return true, nil, true
}

// Stop stops the debounce: the session ended.
func (v *Viability) Stop() {
	if v.timer != nil {
		v.timer.Stop()
	}
}

// WatchPaths starts a path monitor with opts, hands it to set, then runs
// its watch on a goroutine of run, reporting each change to event; stop
// ends the watch. Without a monitor (it failed to start: viability follows
// keepalives only) it logs why and returns nil.
func WatchPaths(opts pathmon.Options, run func(func()), set func(*pathmon.Monitor), event func(pathmon.Event)) (stop context.CancelFunc) {
	m, err := pathmon.New(opts)
	if err != nil {
		if opts.Logger != nil {
			opts.Logger.Warn("nearnet: no path monitor; viability follows keepalives only", "err", err)
		}
		return nil
	}
	set(m)
	ctx, cancel := context.WithCancel(context.Background())
	run(func() { m.Watch(ctx, event) })
	return cancel
}
