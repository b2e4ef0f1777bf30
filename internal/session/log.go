package session

import (
	"fmt"
	"math/bits"
	"slices"
	"sync"

	"github.com/nearnet/nearnet/internal/budget"
	"github.com/nearnet/nearnet/internal/wire"
)

// PerMessageOverhead is charged against a buffer bound for each message, so
// that many empty messages are bounded too.
const PerMessageOverhead = 32

// Log holds the messages sent and not yet acknowledged, in order, so that a
// resumed link can send them again. The zero value is an empty log whose
// first message is numbered 0.
//
// The log may also forget messages not yet acknowledged (MakeRoom,
// Reserve, Skip, Yield) rather than make its sender wait for an ack: the
// acks may be behind data its own node does not read (PROTOCOL.md, "What
// a peer can make a node hold"). It then holds the messages from Base on,
// and Forgotten counts those before Base the peer has not acknowledged: a
// resume from before Base is impossible.
//
// A Log is not safe for concurrent use: its owner guards it (the root's
// Conn.txmu).
type Log struct {
	msgs  [][]byte // msgs[head:] carry sequence numbers base, base+1, ...
	head  int
	base  uint64 // sequence number of msgs[head]: the peer acknowledged or the log forgot all before
	acked uint64 // the peer acknowledged the messages before acked (<= base)
	bytes int    // bytes in the log, with per-message overhead
	slab  []byte // small messages are copied into shared slabs
	room  chan struct{}

	meter budget.Meter // the node's memory budget (SetAccount)
	told  int64        // what the account was told the log could give back
}

// noteYieldable tells the account what the log could give back now.
func (t *Log) noteYieldable() {
	h := t.meter.Held()
	t.meter.Account().AddYieldable(h - t.told)
	t.told = h
}

// SetAccount puts the log's copies on account a of the node's memory
// budget (nil: no bound); see Reserve.
func (t *Log) SetAccount(a *budget.Account) { t.meter.Init(a) }

// CloseAccount gives back what the log holds of the budget: the session
// ended, nothing more is sent (the messages stay for Pending).
func (t *Log) CloseAccount() {
	t.meter.Close()
	t.noteYieldable()
}

// charge is what a copy of an n-byte message costs the budget: a pooled
// buffer's whole capacity for a large one.
func charge(n int) int {
	if n > txSlab/8 {
		return 1 << bits.Len(uint(n-1))
	}
	return n
}

const txSlab = 64 << 10

// Large messages are copied into pooled buffers, one size class per power
// of two, and go back to the pool when acknowledged: a stream of 1 MiB
// messages then costs a copy each, not an allocation, zeroing and garbage.
var txPools [31]sync.Pool

func txBuf(n int) []byte {
	c := bits.Len(uint(n - 1))
	if b, ok := txPools[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<c)
}

func txFree(m []byte) {
	if c := bits.Len(uint(cap(m) - 1)); cap(m) == 1<<c && c < len(txPools) {
		m = m[:0]
		txPools[c].Put(&m)
	}
}

// Add appends a copy of p.
func (t *Log) Add(p []byte) {
	var m []byte
	if len(p) > txSlab/8 {
		m = txBuf(len(p))
		copy(m, p)
	} else {
		if cap(t.slab)-len(t.slab) < len(p) {
			t.slab = make([]byte, 0, txSlab)
		}
		i := len(t.slab)
		t.slab = append(t.slab, p...)
		m = t.slab[i:len(t.slab):len(t.slab)]
	}
	t.msgs = append(t.msgs, m)
	t.bytes += len(p) + PerMessageOverhead
	t.meter.Add(charge(len(p)))
	t.noteYieldable()
}

// Bytes is the size of the log, with per-message overhead.
func (t *Log) Bytes() int { return t.bytes }

// Base is the sequence number of the oldest message in the log: the peer
// acknowledged, or the log forgot, every message before it.
func (t *Log) Base() uint64 { return t.base }

// Next is the sequence number of the next message.
func (t *Log) Next() uint64 { return t.base + uint64(len(t.msgs)-t.head) }

// Full reports whether adding a message of n bytes would take a non-empty
// log over limit bytes.
func (t *Log) Full(n, limit int) bool {
	return t.bytes > 0 && t.bytes+n+PerMessageOverhead > limit
}

// MakeRoom forgets the oldest messages until a message of n bytes fits
// under limit.
func (t *Log) MakeRoom(n, limit int) {
	for t.Full(n, limit) {
		t.forgetOldest()
	}
}

// Reserve makes room in the node's memory budget for a copy of an n-byte
// message, forgetting the oldest messages while the budget refuses. It
// reports false if the budget refuses even an empty log: the message is
// then not logged (Skip, or wait on BudgetWait).
func (t *Log) Reserve(n int) bool {
	c := charge(n)
	for !t.meter.Ensure(c) {
		if t.head == len(t.msgs) {
			return false
		}
		t.forgetOldest()
	}
	return true
}

// BudgetWait returns nil if the budget now has room for an n-byte message
// (reserved), or else a channel closed at its next release.
func (t *Log) BudgetWait(n int) <-chan struct{} {
	ch := t.meter.Account().Budget().Wait()
	if t.meter.Ensure(charge(n)) { // a release came between
		return nil
	}
	return ch
}

// Skip numbers a message sent without a copy in the log (Reserve refused
// it): the log forgets everything before it and it.
func (t *Log) Skip() {
	for t.head < len(t.msgs) {
		t.forgetOldest()
	}
	t.base++
}

// Yield forgets every message, giving their bytes back to the budget for
// the send buffer, which the budget refused; it reports whether there was
// anything to give.
func (t *Log) Yield() bool {
	if t.head == len(t.msgs) {
		return false
	}
	for t.head < len(t.msgs) {
		t.forgetOldest()
	}
	t.meter.Trim()
	return true
}

// Forgotten counts the messages before Base the peer has not acknowledged.
func (t *Log) Forgotten() uint64 { return t.base - t.acked }

// Acked is the count of messages the peer acknowledged.
func (t *Log) Acked() uint64 { return t.acked }

// Unreserve gives back the room Reserve made in the budget for a message
// that is not added now (the link had no room for it): a sender must not
// hold the budget while it waits.
func (t *Log) Unreserve() { t.meter.Trim() }

// Room returns a channel closed at the next acknowledgement that drops
// messages.
func (t *Log) Room() <-chan struct{} {
	if t.room == nil {
		t.room = make(chan struct{})
	}
	return t.room
}

// AckTo drops the messages before n. A stale n (at or before Acked) is no
// error; one beyond Next is the peer's protocol error.
func (t *Log) AckTo(n uint64) error {
	if n <= t.acked {
		return nil // stale: an earlier ack, or a resume from what we know
	}
	if n > t.Next() {
		return &wire.ProtocolError{What: fmt.Sprintf("acknowledged %d messages of %d sent", n, t.Next())}
	}
	t.acked = n
	if n <= t.base {
		return nil // forgotten already
	}
	for t.base < n {
		t.dropOldest()
	}
	t.compact()
	t.noteYieldable()
	if t.room != nil {
		close(t.room)
		t.room = nil
	}
	return nil
}

// forgetOldest drops the oldest message, acknowledged or not.
func (t *Log) forgetOldest() {
	t.dropOldest()
	t.compact()
	t.noteYieldable()
}

func (t *Log) dropOldest() {
	m := t.msgs[t.head]
	t.bytes -= len(m) + PerMessageOverhead
	t.meter.Sub(charge(len(m)))
	if len(m) > txSlab/8 {
		txFree(m)
	}
	t.msgs[t.head] = nil
	t.head++
	t.base++
}

func (t *Log) compact() {
	if t.head == len(t.msgs) {
		t.msgs, t.head = t.msgs[:0], 0
	} else if t.head > len(t.msgs)/2 && t.head > 64 {
		t.msgs = t.msgs[:copy(t.msgs, t.msgs[t.head:])]
		t.head = 0
	}
}

// Unacked returns the messages not yet acknowledged, in order, numbered
// from Base. They are the log's own: the caller must not keep them past
// the next AckTo.
func (t *Log) Unacked() [][]byte { return t.msgs[t.head:] }

// Pending returns copies of the messages not yet acknowledged, in order.
func (t *Log) Pending() [][]byte {
	out := make([][]byte, 0, len(t.msgs)-t.head)
	for _, m := range t.msgs[t.head:] {
		out = append(out, slices.Clone(m))
	}
	return out
}
