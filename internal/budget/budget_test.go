package budget

import (
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestGrantRule: an account grows only while the budget keeps at least as
// much as the account then holds, so k accounts that keep what they got
// end with about 1/(k+1) each, and a newcomer is still served.
func TestGrantRule(t *testing.T) {
	b := New(1 << 20)
	var ms [7]Meter
	for i := range ms {
		ms[i].Init(NewAccount(b))
	}
	// Each takes 32 KiB at a time for as long as it is granted.
	for progress := true; progress; {
		progress = false
		for i := range ms {
			if ms[i].Ensure(32 << 10) {
				ms[i].Add(32 << 10)
				progress = true
			}
		}
	}
	if b.Used() > b.Limit() {
		t.Fatalf("used %d of %d", b.Used(), b.Limit())
	}
	left := b.Limit() - b.Used()
	for i := range ms {
		if h := ms[i].Held(); h > left+32<<10 {
			t.Errorf("meter %d holds %d, more than the %d left (+ one grant)", i, h, left)
		}
	}
	var fresh Meter
	fresh.Init(NewAccount(b))
	if !fresh.Ensure(1000) {
		t.Fatalf("a newcomer was refused with %d of %d left", left, b.Limit())
	}
	fresh.Add(1000)
	fresh.Close()
	for i := range ms {
		ms[i].Close()
	}
	if b.Used() != 0 {
		t.Fatalf("used %d after every meter closed", b.Used())
	}
}

// TestChunks: small additions take the budget a chunk at a time, and a
// meter keeps at most two chunks spare.
func TestChunks(t *testing.T) {
	b := New(64 << 20)
	a := NewAccount(b)
	var m Meter
	m.Init(a)
	for range 1000 {
		if !m.Ensure(100) {
			t.Fatal("refused")
		}
		m.Add(100)
	}
	if got := b.Used(); got < 100_000 || got > 100_000+Chunk {
		t.Fatalf("used %d for 100000 bytes held", got)
	}
	for range 1000 {
		m.Sub(100)
	}
	if got := b.Used(); got > 2*Chunk {
		t.Fatalf("used %d with nothing held; want at most two chunks", got)
	}
	if a.Held() != b.Used() {
		t.Fatalf("account holds %d, budget used %d", a.Held(), b.Used())
	}
	m.Close()
	if b.Used() != 0 || a.Held() != 0 {
		t.Fatalf("after Close: used %d, held %d", b.Used(), a.Held())
	}
}

// TestMoveTo: a grant moves between meters of one account without the
// budget, and one moved to a closed meter goes back at once.
func TestMoveTo(t *testing.T) {
	b := New(64 << 20)
	a := NewAccount(b)
	var from, to Meter
	from.Init(a)
	to.Init(a)
	from.Ensure(1 << 20)
	from.Add(1 << 20)
	used := b.Used()
	from.MoveTo(&to, 1<<20)
	if b.Used() != used || to.Held() != 1<<20 || from.Held() != 0 {
		t.Fatalf("after the move: used %d (was %d), to %d, from %d", b.Used(), used, to.Held(), from.Held())
	}
	to.Sub(1 << 20)
	to.Close()
	from.Ensure(1 << 20)
	from.Add(1 << 20)
	from.MoveTo(&to, 1<<20) // closed: given back
	from.Close()
	if b.Used() != 0 {
		t.Fatalf("used %d after all was given back", b.Used())
	}
}

// TestWait: a refused caller is woken by the next release.
func TestWait(t *testing.T) {
	b := New(1 << 20)
	var big, small Meter
	big.Init(NewAccount(b))
	small.Init(NewAccount(b))
	if !big.Ensure(400 << 10) {
		t.Fatal("refused")
	}
	big.Add(400 << 10)
	if small.Ensure(400 << 10) {
		t.Fatal("granted past the rule")
	}
	ch := b.Wait()
	done := make(chan bool)
	go func() {
		<-ch
		done <- small.Ensure(400 << 10)
	}()
	big.Sub(400 << 10)
	if !<-done {
		t.Fatal("refused after the release")
	}
	big.Close()
	small.Close()
}

// TestWaitYieldable: a refused caller is woken when bytes become
// yieldable though nothing was released (a writer's buffer kept as its
// spare once written), so that it asks again and squeezes them; the
// squeeze gives them back and wakes it again.
func TestWaitYieldable(t *testing.T) {
	b := New(1 << 20)
	holder := NewAccount(b)
	var buf Meter // a link's send buffer, being written: not yieldable
	buf.Init(holder)
	var mu sync.Mutex // the place's lock, which guards buf
	holder.SetYield(func() {
		mu.Lock()
		defer mu.Unlock()
		holder.AddYieldable(-buf.Held())
		buf.Sub(int(buf.Held()))
		buf.Trim()
	})
	if !buf.Ensure(400 << 10) {
		t.Fatal("refused")
	}
	buf.Add(400 << 10)
	var small Meter
	small.Init(NewAccount(b))
	if small.Ensure(400 << 10) {
		t.Fatal("granted past the rule")
	}
	if b.Squeeze(small.Account()) {
		t.Fatal("squeezed an account with nothing yieldable")
	}
	ch := b.Wait()
	if small.Ensure(400 << 10) {
		t.Fatal("granted past the rule")
	}
	// Written: the buffer stays as the spare, yieldable now.
	mu.Lock()
	holder.AddYieldable(buf.Held())
	mu.Unlock()
	select {
	case <-ch: // woken without a release
	default:
		t.Fatal("bytes became yieldable and the refused caller was not woken")
	}
	if small.Ensure(400 << 10) {
		t.Fatal("granted before the squeeze")
	}
	ch = b.Wait()
	if !b.Squeeze(small.Account()) {
		t.Fatal("the yieldable account was not squeezed")
	}
	<-ch
	if !small.Ensure(400 << 10) {
		t.Fatalf("refused after the squeeze: %d of %d used", b.Used(), b.Limit())
	}
	holder.Drop()
	buf.Close()
	small.Close()
	if b.Used() != 0 {
		t.Fatalf("used %d after all was given back", b.Used())
	}
}

// TestNil: no budget, no bound.
func TestNil(t *testing.T) {
	var m Meter
	m.Init(NewAccount(nil))
	if !m.Ensure(1 << 40) {
		t.Fatal("refused without a budget")
	}
	m.Add(1 << 40)
	m.Sub(1 << 40)
	m.Close()
}

// BenchmarkSmallMessage is what the budget costs one 64-byte message on
// its way: the reader's grant, the move to the queue, the release when
// the application comes back, and the send buffer's charge and release.
func BenchmarkSmallMessage(b *testing.B) {
	bud := New(256 << 20)
	rx, tx := NewAccount(bud), NewAccount(bud)
	var reader, queue, send Meter
	reader.Init(rx)
	queue.Init(rx)
	send.Init(tx)
	for range b.N {
		if !reader.Ensure(65) {
			b.Fatal("refused")
		}
		reader.Add(65)
		reader.MoveTo(&queue, 65)
		queue.Sub(65)
		if !send.Ensure(80) {
			b.Fatal("refused")
		}
		send.Add(80)
		send.Sub(80)
	}
}
