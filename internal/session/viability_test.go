package session

import (
	"errors"
	"testing"
	"time"
)

type viaReport struct {
	viable bool
	err    error
}

func debounced(v *Viability, clock *fakeClock, got *[]viaReport) func(bool, error) {
	return func(viable bool, err error) {
		v.Set(viable, err, clock, time.Second, func() {
			if viable, err, ok := v.Due(); ok {
				*got = append(*got, viaReport{viable, err})
			}
		})
	}
}

// A blip shorter than the debounce reports nothing; a loss that lasts is
// reported once with its cause, then the recovery.
func TestViabilityDebounce(t *testing.T) {
	var v Viability
	var clock fakeClock
	var got []viaReport
	set := debounced(&v, &clock, &got)
	cause := errors.New("keepalives unanswered")

	set(false, cause)
	clock.advance(500 * time.Millisecond)
	set(true, nil)
	clock.advance(2 * time.Second)
	if len(got) != 0 || !v.Viable() {
		t.Fatalf("a blip reported %v", got)
	}

	set(false, cause)
	set(false, errors.New("repeated")) // no change: neither restarts nor replaces the cause
	clock.advance(time.Second)
	set(true, nil)
	clock.advance(time.Second)
	want := []viaReport{{false, cause}, {true, nil}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("reports %v, want %v", got, want)
	}

	set(false, cause)
	v.Stop()
	clock.advance(time.Hour)
	if len(got) != 2 || v.Viable() {
		t.Fatalf("a stopped debounce reported: %v", got)
	}
}
