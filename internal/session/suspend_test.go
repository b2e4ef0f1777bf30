package session

import (
	"fmt"
	"testing"
	"time"
)

const resumeWindow = 30 * time.Second

// A peer that never answers: the last link broke, the session is suspended
// and logs on, no link comes, and at the end of the window the session is
// lost with every message the peer never acknowledged, in order.
func TestSuspensionPeerNeverAnswers(t *testing.T) {
	var log Log
	var s Suspension
	var clock fakeClock
	for i := range 5 {
		log.Add(fmt.Append(nil, i))
	}
	if err := log.AckTo(2); err != nil {
		t.Fatal(err)
	}
	var lost [][]byte
	s.Begin(&clock, resumeWindow, func() {
		if s.Suspended() {
			lost = log.Pending()
		}
	})
	log.Add([]byte("5")) // sent while suspended: logged
	clock.advance(resumeWindow - time.Millisecond)
	if lost != nil || !s.Suspended() {
		t.Fatal("lost before the window ended")
	}
	clock.advance(time.Millisecond)
	if len(lost) != 4 || string(lost[0]) != "2" || string(lost[3]) != "5" {
		t.Fatalf("undelivered %q, want 2 3 4 5", lost)
	}
}

// A link resumes the session within the window: it is not lost.
func TestSuspensionResumedInTime(t *testing.T) {
	var s Suspension
	var clock fakeClock
	expired := false
	s.Begin(&clock, resumeWindow, func() { expired = s.Suspended() })
	clock.advance(resumeWindow / 2)
	s.End()
	clock.advance(resumeWindow)
	if expired || s.Suspended() {
		t.Fatal("a resumed session expired")
	}
}
