package session

import (
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

const handshakeTimeout = 10 * time.Second

// A base that skips ahead on the only link is let through, and the link
// fails once the handshake timeout passed with no link filling the gap.
func TestBaseSkipAheadAloneFails(t *testing.T) {
	var r Recv
	r.Offer(0, []byte("0"), 1<<20, false)
	gap, err := CheckBase(5, false, 0, r.Delivered(), true)
	if err != nil || !gap {
		t.Fatalf("base 5 after 1 delivered, alone: gap %v err %v, want a gap", gap, err)
	}
	var clock fakeClock
	var failed *wire.ProtocolError
	WatchGap(&clock, handshakeTimeout, 5, func() (bool, uint64) {
		return r.Delivered() < 5, r.Delivered()
	}, func(pe *wire.ProtocolError) { failed = pe })
	clock.advance(handshakeTimeout - time.Millisecond)
	if failed != nil {
		t.Fatalf("failed before the timeout: %v", failed)
	}
	clock.advance(time.Millisecond)
	if failed == nil || !strings.Contains(failed.What, "base 5 skipped messages") || !strings.Contains(failed.What, "(1 delivered)") {
		t.Fatalf("after the timeout: %v, want the gap's protocol error", failed)
	}
}

// The retired link delivers the messages in between (it was still in its
// handshake when the base came): nothing fails.
func TestBaseSkipAheadFilled(t *testing.T) {
	var r Recv
	var clock fakeClock
	failed := false
	WatchGap(&clock, handshakeTimeout, 3, func() (bool, uint64) {
		return r.Delivered() < 3, r.Delivered()
	}, func(*wire.ProtocolError) { failed = true })
	for i := range uint64(3) {
		r.Offer(i, nil, 1<<20, true)
	}
	clock.advance(handshakeTimeout)
	if failed {
		t.Fatal("a gap filled in time failed the link")
	}
}

func TestCheckBase(t *testing.T) {
	for _, c := range []struct {
		seq                 uint64
		resumed             bool
		announced, delivers uint64
		alone, gap, err     bool
	}{
		{seq: 4, resumed: true, announced: 4, delivers: 4},
		{seq: 5, resumed: true, announced: 4, delivers: 4, err: true},
		{seq: 3, delivers: 4, err: true},              // rewinds
		{seq: 4, delivers: 4, alone: true},            // continues
		{seq: 6, delivers: 4},                         // skips ahead, another link fills
		{seq: 6, delivers: 4, alone: true, gap: true}, // skips ahead alone
	} {
		gap, err := CheckBase(c.seq, c.resumed, c.announced, c.delivers, c.alone)
		if gap != c.gap || (err != nil) != c.err {
			t.Errorf("%+v: gap %v err %v", c, gap, err)
		}
	}
}
