package dgram

import "testing"

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	accept := func(pn uint64, want replayVerdict) {
		t.Helper()
		if got := w.check(pn); got != want {
			t.Fatalf("check(%d) with highest %d = %v, want %v", pn, w.last, got, want)
		}
		if want == replayOK {
			w.update(pn)
		}
	}
	accept(0, replayOK)
	accept(0, replaySeen)
	accept(2, replayOK)
	accept(1, replayOK) // late but new
	accept(1, replaySeen)
	accept(5000, replayOK)
	accept(5000-replayWindowSize+1, replayOK) // the oldest still in the window
	accept(5000-replayWindowSize, replayTooOld)
	accept(2, replayTooOld)
	accept(4999, replayOK)
	// A jump past the whole ring clears it.
	accept(1<<40, replayOK)
	accept(1<<40-1, replayOK)
	accept(4999, replayTooOld)
	accept(1<<40-replayWindowSize+1, replayOK)
	// Bits of old blocks do not leak into new ones as the ring turns.
	for pn := uint64(1<<40 + 1); pn < 1<<40+3*replayBits; pn += 63 {
		accept(pn, replayOK)
	}
}
