package stream

import (
	"errors"
	"sync"

	"github.com/nearnet/nearnet/internal/wire"
)

// ErrBacklogFull refuses a stream or resource offer when the application
// has not taken the ones before.
var ErrBacklogFull = errors.New("too many streams or resource offers waiting to be accepted")

// Table is one connection's streams: the open ones (for abort and close),
// the backlog places taken by streams and resource offers not yet
// accepted, the stream numbers, and our stream requests the peer has yet
// to open. S is the owner's stream type. A Table is safe for concurrent
// use; its lock comes before the session's.
type Table[S comparable] struct {
	mu      sync.Mutex
	backlog int
	open    map[S]bool // open streams; true once handed to the application
	queued  [2]int     // backlog places taken: streams, resource offers
	next    uint64     // the last stream number used
	pending map[uint64]*Pending[S]
}

// Pending is a stream request of ours the peer has yet to open.
type Pending[S any] struct {
	Name string
	Meta map[string]string
	Kind string
	Ch   chan Result[S] // gets the stream, or why not; buffered
}

// Result is what became of a Pending request.
type Result[S any] struct {
	S   S
	Err error
}

// Init sets the backlog bound of streams and, apart, of resource offers.
func (t *Table[S]) Init(backlog int) { t.backlog = backlog }

func queue(kind string) int {
	if kind == wire.StreamKindResource {
		return 1
	}
	return 0
}

// NextID numbers a stream we open.
func (t *Table[S]) NextID() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	return t.next
}

// Request records our request id, which the peer answers by opening it.
func (t *Table[S]) Request(id uint64, p *Pending[S]) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = make(map[uint64]*Pending[S])
	}
	t.pending[id] = p
}

// Answered removes request id and returns it, nil if none waits.
func (t *Table[S]) Answered(id uint64) *Pending[S] {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending[id]
	delete(t.pending, id)
	return p
}

// Reserve takes a place in the backlog of kind, if there is one.
func (t *Table[S]) Reserve(kind string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reserveLocked(kind)
}

func (t *Table[S]) reserveLocked(kind string) bool {
	q := &t.queued[queue(kind)]
	if *q >= t.backlog {
		return false
	}
	*q++
	return true
}

// Unreserve frees a place Reserve took.
func (t *Table[S]) Unreserve(kind string) {
	t.mu.Lock()
	t.queued[queue(kind)]--
	t.mu.Unlock()
}

// Admit decides on an incoming stream open o, unless ended reports that
// the connection has ended: a reply to our request returns the request,
// anything else takes a backlog place. refusal says why not.
func (t *Table[S]) Admit(o *wire.StreamOpen, ended func() bool) (p *Pending[S], refusal string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case ended():
		return nil, "the connection has ended"
	case o.Reply:
		p = t.pending[o.ID]
		delete(t.pending, o.ID)
		if p == nil {
			return nil, "no stream request with that id is waiting"
		}
		return p, ""
	case !t.reserveLocked(o.Kind):
		return nil, ErrBacklogFull.Error()
	}
	return nil, ""
}

// Keep records s as open (taken: already the application's), unless
// ended reports that the connection has ended.
func (t *Table[S]) Keep(s S, taken bool, ended func() bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ended() {
		return false
	}
	if t.open == nil {
		t.open = make(map[S]bool)
	}
	t.open[s] = taken
	return true
}

// Drop forgets s, which ended.
func (t *Table[S]) Drop(s S) {
	t.mu.Lock()
	delete(t.open, s)
	t.mu.Unlock()
}

// Take hands s, queued as kind, to the application: its backlog place is
// free again.
func (t *Table[S]) Take(s S, kind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queued[queue(kind)]--
	if _, ok := t.open[s]; ok {
		t.open[s] = true
	}
}

// Where returns the open streams that keep says to take, by whether the
// application has them.
func (t *Table[S]) Where(keep func(taken bool) bool) []S {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ss []S
	for s, taken := range t.open {
		if keep(taken) {
			ss = append(ss, s)
		}
	}
	return ss
}
