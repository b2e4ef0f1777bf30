package session

import (
	"time"
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
