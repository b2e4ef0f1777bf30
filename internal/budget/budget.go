// Package budget bounds the message bytes a node holds for all its peers
// together (Config.MemoryBudget): what was read and not yet taken by the
// application, and what was sent and not yet written or acknowledged.
//
// A [Budget] is one pool of bytes. Each peer's connection has an [Account]
// in it, and each place that holds bytes for that connection (a link's
// reader, the receive queue, a link's send buffer, the resume log) has a
// [Meter] on the account, guarded by that place's own lock. A meter takes
// bytes from the budget in chunks and gives them back in chunks, so that a
// small message costs a few additions under a lock the caller holds
// anyway, and the budget's atomics are touched once per chunk; a large
// message (a chunk or more) takes its exact size.
//
// The rule that decides a grant is what makes a crowd harmless: an
// account may take n more bytes only if, afterwards, the budget has at
// least as much left as the account then holds. So the peers that hold the
// most are refused first (their connections stop reading, and TCP's or
// QUIC's flow control pushes back on them), k peers that hold on to what
// they got end with about 1/(k+1) of the budget each, and a peer that
// holds little is served from what is left.
package budget

import (
	"sync"
	"sync/atomic"
)

// Chunk is how many bytes a meter takes from or gives back to its budget
// at a time for small messages; a meter keeps at most two chunks it does
// not use (PROTOCOL.md: what a peer can make a node hold).
const Chunk = 16 << 10

// A Budget is a pool of bytes shared by accounts. It is safe for
// concurrent use. A nil *Budget is no bound: every request is granted.
type Budget struct {
	limit   int64
	used    atomic.Int64
	waiting atomic.Bool // someone waits on wake

	mu       sync.Mutex            // guards wake and yielders
	wake     chan struct{}         // closed at the next release while waiting is set
	yielders map[*Account]struct{} // accounts that can give way (SetYield)
}

// New returns a budget of limit bytes.
func New(limit int64) *Budget { return &Budget{limit: limit} }

// Limit returns the budget's size.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns the bytes granted and not yet given back.
func (b *Budget) Used() int64 { return b.used.Load() }

// Wait returns a channel closed at the next release. A caller that was
// refused gets the channel, asks once more (a release may have come
// between), and waits on it if refused again.
func (b *Budget) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	b.waiting.Store(true)
	return b.wake
}

func (b *Budget) release(n int64) {
	b.used.Add(-n)
	if b.waiting.Load() {
		b.wakeAll()
	}
}

// wakeAll closes the channel Wait gave out.
func (b *Budget) wakeAll() {
	b.mu.Lock()
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.waiting.Store(false)
	b.mu.Unlock()
}

// An Account is one connection's share of a budget: the bytes its meters
// took. It is safe for concurrent use. A nil *Account is no bound.
type Account struct {
	b         *Budget
	held      atomic.Int64
	yieldable atomic.Int64 // what yield would give back (AddYieldable)
	yielding  atomic.Bool  // a yield is under way
	yield     func()
}

// SetYield registers a's yield: a function that gives back bytes a holds
// without waiting for anyone (a resume log forgetting its messages), for
// Squeeze. Unregister a with Drop.
func (a *Account) SetYield(yield func()) {
	if a == nil {
		return
	}
	a.yield = yield
	a.b.mu.Lock()
	if a.b.yielders == nil {
		a.b.yielders = make(map[*Account]struct{})
	}
	a.b.yielders[a] = struct{}{}
	a.b.mu.Unlock()
}

// AddYieldable adds n (which may be negative) to what a's yield would
// give back now.
//
// Bytes that become yieldable wake the budget's waiters as a release
// does: a caller refused while they were held in a way no yield could
// give back (a buffer being written, which becomes the writer's spare
// once written, without a release) would otherwise wait for a release
// that may never come, and never squeeze a.
func (a *Account) AddYieldable(n int64) {
	if a != nil && a.yield != nil && n != 0 {
		a.yieldable.Add(n)
		if n > 0 && a.b.waiting.Load() {
			a.b.wakeAll()
		}
	}
}

// Drop unregisters a's yield: the account is closed.
func (a *Account) Drop() {
	if a == nil || a.yield == nil {
		return
	}
	a.b.mu.Lock()
	delete(a.b.yielders, a)
	a.b.mu.Unlock()
}

// Squeeze asks the account other than except that could give back the
// most to do so, on a goroutine of its own (the caller may hold locks the
// yield takes). It reports whether one was asked. A caller that was
// refused and will wait for a release calls it, so that what is held only
// for a resume cannot keep what must be written waiting.
func (b *Budget) Squeeze(except *Account) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	var best *Account
	var most int64
	for a := range b.yielders {
		if n := a.yieldable.Load(); a != except && n > most && !a.yielding.Load() {
			best, most = a, n
		}
	}
	b.mu.Unlock()
	if best == nil || !best.yielding.CompareAndSwap(false, true) {
		return false
	}
	go func() {
		best.yield()
		best.yielding.Store(false)
		// Wake the waiters even if the yield gave nothing back (what it
		// was told was stale): each asks again, and squeezes the next.
		b.release(0)
	}()
	return true
}

// NewAccount returns an account on b (nil: no bound).
func NewAccount(b *Budget) *Account {
	if b == nil {
		return nil
	}
	return &Account{b: b}
}

// Held returns the bytes the account's meters took from the budget.
func (a *Account) Held() int64 { return a.held.Load() }

// Budget returns the account's budget.
func (a *Account) Budget() *Budget { return a.b }

// take grants n bytes if the budget then has at least as much left as the
// account then holds.
func (a *Account) take(n int64) bool {
	b := a.b
	for {
		u := b.used.Load()
		h := a.held.Load() + n
		if u+n+h > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			a.held.Add(n)
			return true
		}
	}
}

// force takes n bytes whatever is left (a resend after a resume: the
// bytes are in the log already).
func (a *Account) force(n int64) {
	a.b.used.Add(n)
	a.held.Add(n)
}

func (a *Account) give(n int64) {
	a.held.Add(-n)
	a.b.release(n)
}

// A Meter is what one place holds for an account: held bytes in use and
// res bytes taken from the budget (res >= held, but for a forced Add). It
// is not safe for concurrent use: the place's own lock guards it. The zero
// Meter, or one on a nil account, counts nothing.
type Meter struct {
	a      *Account
	held   int64
	res    int64
	closed bool
}

// Init puts m on account a (nil: no bound).
func (m *Meter) Init(a *Account) { *m = Meter{a: a} }

// Account returns m's account.
func (m *Meter) Account() *Account { return m.a }

// Held returns the bytes m holds.
func (m *Meter) Held() int64 { return m.held }

// Ensure makes room for n more bytes, taking them (rounded up to a Chunk)
// from the budget if m has not got them spare. It reports false if the
// budget refuses; then nothing changed.
func (m *Meter) Ensure(n int) bool {
	if m.held+int64(n) <= m.res || m.a == nil || m.closed {
		return true // the fast path, inlined
	}
	return m.ensure(n)
}

func (m *Meter) ensure(n int) bool {
	need := m.held + int64(n) - m.res
	if need <= 0 {
		return true
	}
	if need < Chunk {
		if m.a.take(Chunk) {
			m.res += Chunk
			return true
		}
	}
	if !m.a.take(need) {
		return false
	}
	m.res += need
	return true
}

// Add counts n more bytes held; room for them should have been made with
// Ensure, else they are taken whatever the budget has left.
func (m *Meter) Add(n int) {
	m.held += int64(n)
	if m.held > m.res {
		m.force()
	}
}

func (m *Meter) force() {
	if m.a == nil || m.closed {
		m.held = 0 // counts nothing
		return
	}
	d := m.held - m.res
	m.a.force(d)
	m.res += d
}

// Sub counts n bytes no longer held, giving back to the budget all but a
// Chunk of what m has spare once that is over two chunks.
func (m *Meter) Sub(n int) {
	m.held -= int64(n)
	if m.res-m.held > 2*Chunk {
		m.trim()
	}
}

func (m *Meter) trim() {
	if m.a == nil || m.closed {
		m.held = 0 // counts nothing
		return
	}
	spare := m.res - m.held
	m.res -= spare - Chunk
	m.a.give(spare - Chunk)
}

// Trim gives back all m has spare: room made with Ensure that will not be
// used now (the caller waits for something else meanwhile, and must not
// hold the budget while it waits).
func (m *Meter) Trim() {
	if m.a == nil || m.closed {
		return
	}
	if spare := m.res - m.held; spare > 0 {
		m.res -= spare
		m.a.give(spare)
	}
}

// MoveTo hands n held bytes, with the budget's grant for them, to another
// meter on the same account (a message passing from a link's reader to
// the receive queue). No atomic operation.
func (m *Meter) MoveTo(to *Meter, n int) {
	if m.a == nil {
		return
	}
	if m.closed { // Close gave the grant back already
		to.Add(n)
		return
	}
	m.held -= int64(n)
	m.res -= int64(n)
	to.absorb(n)
}

// absorb takes n held bytes and their grant from another meter.
func (m *Meter) absorb(n int) {
	if m.a == nil {
		return
	}
	if m.closed {
		m.a.give(int64(n))
		return
	}
	m.held += int64(n)
	m.res += int64(n)
}

// Close gives everything back: the place holds nothing any more (its
// connection or link ended). Later calls count nothing, and bytes moved to
// a closed meter are given back at once.
func (m *Meter) Close() {
	if m.a == nil || m.closed {
		return
	}
	m.closed = true
	if m.res > 0 {
		m.a.give(m.res)
	}
	m.held, m.res = 0, 0
}
