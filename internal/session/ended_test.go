package session

import (
	"testing"

	"github.com/nearnet/nearnet/internal/wire"
)

func TestLinkEnded(t *testing.T) {
	const broke = 0 // no close frame: the transport ended
	for _, c := range []struct {
		name                 string
		left                 int
		peerClosed           bool
		code                 int
		canResume, resumable bool
		want                 Ended
	}{
		// A duplicate swap: the loser closes with 4004 (or normally) while
		// the survivor stays.
		{"swap: the peer dropped the duplicate", 1, true, wire.CloseDuplicate, true, false, Continue},
		{"swap: the loser closed normally", 1, true, wire.CloseNormal, true, false, Continue},
		{"swap: a link broke during it", 1, false, broke, true, true, SwapFailed},
		{"swap: the peer failed a link during it", 1, true, wire.CloseProtocolError, true, false, SwapFailed},
		// The last link.
		{"the peer dropped the last link as a duplicate", 0, true, wire.CloseDuplicate, true, false, AwaitSuccessor},
		{"the peer asked to resume", 0, true, wire.CloseResume, true, false, Suspend},
		{"the peer asked to resume, we do not", 0, true, wire.CloseResume, false, false, PeerFailed},
		{"the peer closed", 0, true, wire.CloseNormal, true, false, PeerClosed},
		{"the peer's node closed", 0, true, wire.CloseGoingAway, true, false, PeerClosed},
		{"a close frame without a code", 0, true, wire.CloseNoStatus, true, false, PeerClosed},
		{"the peer closed with an error", 0, true, wire.CloseProtocolError, true, false, PeerFailed},
		// A peer that never answers: keepalives time out, or the transport
		// breaks. The session waits to resume if it can.
		{"a peer that never answers, resuming", 0, false, broke, true, true, Suspend},
		{"a peer that never answers, no resume", 0, false, broke, false, true, Fail},
		{"bad input from the peer", 0, false, broke, true, false, Fail},
	} {
		if got := LinkEnded(c.left, c.peerClosed, c.code, c.canResume, c.resumable); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
