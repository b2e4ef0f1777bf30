package session

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// feed is one link's data messages as the receiver reads them: numbered
// from base, possibly overlapping another link's.
type feed struct {
	base uint64
	msgs []string
	next int
	wait <-chan struct{} // the WriterWait of a Blocked offer
}

// run offers the feeds' messages in an order chosen by seed, as link
// readers would, taking from the queue now and then as a ReceiveMessage
// caller would. A Blocked link offers again only once its WriterWait
// channel was closed: a wake-up that never comes is a hang, reported.
func run(t *testing.T, seed uint64, limit int, feeds ...*feed) []string {
	t.Helper()
	var r Recv
	var got []string
	rnd := rand.New(rand.NewPCG(seed, 0))
	for {
		var ready []*feed
		for _, f := range feeds {
			if f.next == len(f.msgs) {
				continue
			}
			if f.wait != nil {
				select {
				case <-f.wait:
					f.wait = nil
				default:
					continue
				}
			}
			ready = append(ready, f)
		}
		if len(ready) == 0 || rnd.IntN(3) == 0 {
			m, ok := r.Take(limit)
			if ok {
				got = append(got, string(m))
				continue
			}
			if len(ready) == 0 {
				for _, f := range feeds {
					if f.next < len(f.msgs) {
						t.Fatalf("seed %d: a link waits for ever at message %d (delivered %d)", seed, f.base+uint64(f.next), r.Delivered())
					}
				}
				return got
			}
		}
		f := ready[rnd.IntN(len(ready))]
		others := 0
		for _, g := range feeds {
			if g != f && g.next < len(g.msgs) {
				others++
			}
		}
		switch r.Offer(f.base+uint64(f.next), []byte(f.msgs[f.next]), limit, others > 0) {
		case Queued, Duplicate:
			f.next++
			if f.next == len(f.msgs) {
				r.WakeWriters() // the link ended (Conn.linkEnded)
			}
		case Blocked:
			f.wait = r.WriterWait()
		}
	}
}

func msgs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func checkInOrder(t *testing.T, seed uint64, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("seed %d: delivered %d messages, want %d: %v", seed, len(got), n, got)
	}
	for i, m := range got {
		if m != fmt.Sprint(i) {
			t.Fatalf("seed %d: message %d is %s: %v", seed, i, m, got)
		}
	}
}

// A duplicate swap: the retired link still carries messages 0-29 when the
// surviving one, whose base message said 30, brings 30-59. Whichever link
// the receiver reads first, every message arrives once and in order, with
// a queue small enough to block both links.
func TestRecvDuplicateSwapInFlight(t *testing.T) {
	for seed := range uint64(200) {
		old := &feed{base: 0, msgs: msgs(0, 30)}
		succ := &feed{base: 30, msgs: msgs(30, 60)}
		got := run(t, seed, 4*(PerMessageOverhead+2), old, succ)
		checkInOrder(t, seed, got, 60)
	}
}

// Overlapping links (a resend that repeats what another link delivered):
// the repeats are dropped.
func TestRecvOverlapDeliveredOnce(t *testing.T) {
	for seed := range uint64(200) {
		a := &feed{base: 0, msgs: msgs(0, 40)}
		b := &feed{base: 25, msgs: msgs(25, 50)}
		got := run(t, seed, 1<<20, a, b)
		checkInOrder(t, seed, got, 50)
	}
}

// One message always fits an empty queue, whatever the limit; the next
// waits until the reader drained the queue to half.
func TestRecvBound(t *testing.T) {
	var r Recv
	if r.Offer(0, make([]byte, 100), 10, false) != Queued {
		t.Fatal("a message larger than the limit did not fit the empty queue")
	}
	if r.Offer(1, nil, 10, false) != Blocked {
		t.Fatal("a full queue took another message")
	}
	w := r.WriterWait()
	if _, ok := r.Take(10); !ok {
		t.Fatal("nothing to take")
	}
	select {
	case <-w:
	default:
		t.Fatal("draining the queue did not wake the blocked link")
	}
	if r.Offer(1, nil, 10, false) != Queued || r.Delivered() != 2 {
		t.Fatal("the blocked message did not go in after the drain")
	}
}

// The direct read: the reader keeps the next message when the queue is
// empty, else it is queued behind the others; either way delivered moves.
func TestRecvTakeDirect(t *testing.T) {
	var r Recv
	rw, ready := r.ReaderWait()
	if ready || rw == nil || !r.ReaderWaiting() {
		t.Fatal("an empty queue is not ready")
	}
	if !r.TakeDirect([]byte("0")) || r.Delivered() != 1 {
		t.Fatal("the direct reader did not keep the message of an empty queue")
	}
	r.Offer(1, []byte("1"), 1<<20, false)
	select {
	case <-rw:
	default:
		t.Fatal("a queued message did not wake the waiting reader")
	}
	if r.TakeDirect([]byte("2")) || r.Delivered() != 3 {
		t.Fatal("a direct read jumped the queue")
	}
	for _, want := range []string{"1", "2"} {
		if m, _ := r.Take(1 << 20); string(m) != want {
			t.Fatalf("took %q, want %q", m, want)
		}
	}
	r.SetErr(fmt.Errorf("end"))
	if _, ready := r.ReaderWait(); !ready {
		t.Fatal("an error does not make the queue ready")
	}
}
