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
// A Log is not safe for concurrent use: its owner guards it (the root's
// Conn.txmu).
type Log struct {
	msgs  [][]byte // msgs[head:] carry sequence numbers base, base+1, ...
	head  int
	base  uint64 // sequence number of msgs[head]: the peer acknowledged all before
	bytes int    // bytes in the log, with per-message overhead
	slab  []byte // small messages are copied into shared slabs
	room  chan struct{}

	meter  budget.Meter    // the node's memory budget (SetAccount)
	noRoom <-chan struct{} // Full was refused by the budget: Room returns its release
}

// SetAccount puts the log's copies on account a of the node's memory
// budget (nil: no bound). Full then also waits for the budget.
func (t *Log) SetAccount(a *budget.Account) { t.meter.Init(a) }

// CloseAccount gives back what the log holds of the budget: the session
// ended, nothing more is sent (the messages stay for Pending).
func (t *Log) CloseAccount() { t.meter.Close() }

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
}

// Bytes is the size of the log, with per-message overhead.
func (t *Log) Bytes() int { return t.bytes }

// Base is the sequence number of the oldest message in the log: the peer
// acknowledged every message before it.
func (t *Log) Base() uint64 { return t.base }

// Next is the sequence number of the next message.
func (t *Log) Next() uint64 { return t.base + uint64(len(t.msgs)-t.head) }

// Full reports whether adding a message of n bytes would take a non-empty
// log over limit bytes, or the node's memory budget refuses it.
func (t *Log) Full(n, limit int) bool {
	if t.bytes > 0 && t.bytes+n+PerMessageOverhead > limit {
		return true
	}
	c := charge(n)
	if t.meter.Ensure(c) {
		return false
	}
	ch := t.meter.Account().Budget().Wait()
	if t.meter.Ensure(c) { // a release came between
		return false
	}
	t.noRoom = ch
	return true
}

// Unreserve gives back the room Full made in the budget for a message
// that is not added now (the link had no room for it): a sender must not
// hold the budget while it waits.
func (t *Log) Unreserve() { t.meter.Trim() }

// Room returns a channel closed when what made Full report true may have
// changed: the next acknowledgement that drops messages, or the budget's
// next release.
func (t *Log) Room() <-chan struct{} {
	if ch := t.noRoom; ch != nil {
		t.noRoom = nil
		return ch
	}
	if t.room == nil {
		t.room = make(chan struct{})
	}
	return t.room
}

// AckTo drops the messages before n. A stale n (at or before Base) is no
// error; one beyond Next is the peer's protocol error.
func (t *Log) AckTo(n uint64) error {
	if n <= t.base {
		return nil // stale: an earlier ack, or a resume from what we know
	}
	if n > t.Next() {
		return &wire.ProtocolError{What: fmt.Sprintf("acknowledged %d messages of %d sent", n, t.Next())}
	}
	for ; t.base < n; t.base++ {
		m := t.msgs[t.head]
		t.bytes -= len(m) + PerMessageOverhead
		t.meter.Sub(charge(len(m)))
		if len(m) > txSlab/8 {
			txFree(m)
		}
		t.msgs[t.head] = nil
		t.head++
	}
	if t.head == len(t.msgs) {
		t.msgs, t.head = t.msgs[:0], 0
	} else if t.head > len(t.msgs)/2 && t.head > 64 {
		t.msgs = t.msgs[:copy(t.msgs, t.msgs[t.head:])]
		t.head = 0
	}
	if t.room != nil {
		close(t.room)
		t.room = nil
	}
	return nil
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
