package session

// Machine holds a session's state, of the owner's type S (the Session's
// State), and tells watchers of each change: Changed returns a channel
// closed at the next one. Once a final state is reached, it never changes
// again. Set reports whether the state changed, so that the owner queues
// its callbacks in the order of the changes; the owner runs them later,
// outside its lock (Events).
//
// A Machine is not safe for concurrent use: its owner's lock guards it.
// Init it before use.
type Machine[S any] struct {
	cur     S
	final   bool
	changed chan struct{}
}

// Init sets the first state.
func (m *Machine[S]) Init(s S) {
	m.cur, m.changed = s, make(chan struct{})
}

// Cur returns the current state.
func (m *Machine[S]) Cur() S { return m.cur }

// Changed returns the channel closed at the next change.
func (m *Machine[S]) Changed() <-chan struct{} { return m.changed }

// Terminal reports whether the state is final.
func (m *Machine[S]) Terminal() bool { return m.final }

// Set moves to s, final if it is a final state, and wakes the watchers. It
// does nothing, and reports false, once the state is final.
func (m *Machine[S]) Set(s S, final bool) bool {
	if m.final {
		return false
	}
	m.cur, m.final = s, final
	close(m.changed)
	m.changed = make(chan struct{})
	return true
}
