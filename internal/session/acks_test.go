package session

import "testing"

// Small messages are acknowledged once per AckDelay, a burst over
// AckEveryBytes at once, and an ack that would repeat the last is not sent.
func TestAcks(t *testing.T) {
	var a Acks
	var clock fakeClock
	var rx Recv
	var acks []uint64
	send := func() {
		if a.Due(rx.Delivered()) {
			acks = append(acks, rx.Delivered())
			a.Sent(rx.Delivered())
		}
	}
	take := func(size int) {
		rx.Offer(rx.Delivered(), make([]byte, size), 1<<30, false)
		if a.Note(size, &clock, send) {
			send()
		}
	}
	take(10)
	take(10)
	if len(acks) != 0 {
		t.Fatalf("acked before the delay: %v", acks)
	}
	clock.advance(AckDelay)
	take(10) // re-arms the timer
	clock.advance(AckDelay)
	clock.advance(AckDelay) // nothing new: no ack
	if len(acks) != 2 || acks[0] != 2 || acks[1] != 3 {
		t.Fatalf("acks %v, want [2 3]", acks)
	}
	take(AckEveryBytes)
	if len(acks) != 3 || acks[2] != 4 {
		t.Fatalf("a large message was not acknowledged at once: %v", acks)
	}
	a.Stop()
}
