package session

import (
	"fmt"
	"testing"
)

// A cut link resumed: the sender's log and the receiver's queue, across a
// link that broke with messages in flight, while the sender went on
// logging. The receiver's resume hello announces what it delivered; the
// sender drops what that acknowledges, sends a base message with it and
// resends the rest of its log. Nothing is lost or duplicated.
func TestResumeNothingLostOrDuplicated(t *testing.T) {
	for _, c := range []struct{ sent, arrived, acked int }{
		{10, 6, 3},  // in flight and unacknowledged
		{10, 10, 0}, // all arrived, no ack yet
		{10, 0, 0},  // nothing arrived
		{10, 7, 7},  // acknowledged all that arrived
	} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			var log Log
			var rx Recv
			var got []string
			take := func() {
				for {
					m, ok := rx.Take(1 << 20)
					if !ok {
						return
					}
					got = append(got, string(m))
				}
			}
			// The first link: sent messages, some arrive, some are acked.
			for i := range c.sent {
				log.Add(fmt.Append(nil, i))
			}
			for i := range c.arrived {
				if rx.Offer(uint64(i), fmt.Append(nil, i), 1<<20, false) != Queued {
					t.Fatalf("message %d not queued", i)
				}
			}
			if err := log.AckTo(uint64(c.acked)); err != nil {
				t.Fatal(err)
			}
			take()
			// The link is cut; the sender is suspended and logs on.
			for i := c.sent; i < c.sent+5; i++ {
				log.Add(fmt.Append(nil, i))
			}
			// The new link: the receiver's hello announces its count.
			announced := rx.Delivered()
			if err := log.AckTo(announced); err != nil {
				t.Fatal(err)
			}
			if announced < log.Base() {
				t.Fatal("resume from before what the peer acknowledged")
			}
			base := announced // the base message the sender sends first
			if gap, err := CheckBase(base, true, announced, rx.Delivered(), true); gap || err != nil {
				t.Fatalf("base %d on the resumed link: gap %v, %v", base, gap, err)
			}
			for i, m := range log.Unacked() {
				if rx.Offer(base+uint64(i), m, 1<<20, false) != Queued {
					t.Fatalf("resent message %d not queued", base+uint64(i))
				}
			}
			take()
			checkInOrder(t, 0, got, c.sent+5)
		})
	}
}

// A resumed link whose base is not what the receiver announced is a
// protocol error: messages would be lost or duplicated.
func TestResumeBaseMismatch(t *testing.T) {
	for _, base := range []uint64{5, 7} {
		if _, err := CheckBase(base, true, 6, 6, true); err == nil {
			t.Errorf("base %d on a resumed link that announced 6: no error", base)
		}
	}
}
