package session

import "time"

// The receiver acknowledges what it took in (ack messages carry the count,
// PROTOCOL.md "Session resume"): at once after AckEveryBytes, else after
// AckDelay, so that the sender's Log is trimmed without an ack per message.
const (
	AckEveryBytes = 64 << 10
	AckDelay      = 20 * time.Millisecond
)

// Acks decides when the receiver sends an ack. The zero value has sent
// none.
//
// Acks is not safe for concurrent use: its owner's lock guards it.
type Acks struct {
	unacked int    // bytes taken in since the last ack sent, with overhead
	sent    uint64 // the count the last ack carried
	timer   Timer
	armed   bool
}

// Note counts a message of size bytes taken in. It reports whether an ack
// is due at once; otherwise it makes sure the delayed ack is armed: after
// AckDelay, fire runs with no lock held (it takes the owner's lock and
// calls Due). fire should be the same function every time: it is kept
// from the first call.
func (a *Acks) Note(size int, clock Clock, fire func()) (now bool) {
	a.unacked += size + PerMessageOverhead
	if a.unacked >= AckEveryBytes {
		return true
	}
	if a.timer == nil {
		a.timer = clock.AfterFunc(AckDelay, fire)
	} else if !a.armed {
		a.timer.Reset(AckDelay)
	}
	a.armed = true
	return false
}

// Due disarms the delayed ack and reports whether an ack carrying
// delivered would tell the peer something new.
func (a *Acks) Due(delivered uint64) bool {
	a.armed = false
	return a.sent != delivered
}

// Sent records that an ack carrying n was queued.
func (a *Acks) Sent(n uint64) {
	a.sent = n
	a.unacked = 0
}

// Stop stops the delayed ack: the session ended.
func (a *Acks) Stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
}
