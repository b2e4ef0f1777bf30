package dgram

// replayWindow tracks which packet numbers a flow has accepted, the way
// WireGuard and RFC 6479 do: a ring of 64-bit blocks, so that moving the
// window forward clears whole blocks instead of shifting bits. It accepts any
// packet number above the highest seen, and one up to replayWindowSize below
// it that was not seen yet.
//
// A replayWindow is not safe for concurrent use; only a Mux's reader touches it.
type replayWindow struct {
	last uint64 // highest packet number accepted
	ring [replayBlocks]uint64
}

const (
	replayBlocks = 32 // 2048 bits
	replayBits   = replayBlocks * 64
	// replayWindowSize is how far below the highest packet number a late
	// packet is still accepted. One block of the ring is the one being
	// filled, so the guaranteed window is a block short of the ring.
	replayWindowSize = replayBits - 64
)

type replayVerdict int

const (
	replayOK replayVerdict = iota
	replaySeen
	replayTooOld
)

// check reports whether pn would be accepted, without recording it. It is
// called before authentication, so that a replay costs no decryption; update
// records pn only after the datagram proved authentic.
func (w *replayWindow) check(pn uint64) replayVerdict {
	if pn > w.last {
		return replayOK
	}
	if w.last-pn >= replayWindowSize {
		return replayTooOld
	}
	bit := pn % replayBits
	if w.ring[bit/64]&(1<<(bit%64)) != 0 {
		return replaySeen
	}
	return replayOK
}

// update records pn, which check accepted.
func (w *replayWindow) update(pn uint64) {
	if pn > w.last {
		cur, next := w.last/64, pn/64
		diff := next - cur
		if diff > replayBlocks {
			diff = replayBlocks
		}
		for i := uint64(1); i <= diff; i++ {
			w.ring[(cur+i)%replayBlocks] = 0
		}
		w.last = pn
	}
	bit := pn % replayBits
	w.ring[bit/64] |= 1 << (bit % 64)
}
