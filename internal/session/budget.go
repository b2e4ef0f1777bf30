package session

import (
	"sync"
	"sync/atomic"

	"github.com/nearnet/nearnet/internal/budget"
)

// The node's memory budget (the root's Config.MemoryBudget,
// internal/budget): half bounds what was received and not yet taken (a
// link's reader reserves a message's bytes from its frame header, before
// reading it; the grant moves with the message to the receive queue, then
// to the application, which holds it until its next ReceiveMessage), half
// what was sent and not yet written (a link's send buffer) or acknowledged
// (the resume log). Each Session has an account in each half; the places
// that hold bytes meter them under their own locks.
//
// Nothing waits for an acknowledgement on account of the budget: acks
// travel behind data (PROTOCOL.md section 11), and a node that stopped
// reading a connection would wait for one behind what it does not read.
// So the log gives way instead: refused by the budget, it forgets its
// oldest messages (Log.Reserve); when the send buffer is refused, the
// session's whole log goes (Log.Yield), and then the log and the writers'
// spare buffers of the session that holds the most of them
// (budget.Squeeze; a sender refused is woken to squeeze again whenever
// such bytes appear, budget.Account.AddYieldable); and while a reader of
// the session waits for room (Stall), SendMessage does not wait for acks
// to bring the log under its own bound either (Log.MakeRoom). A session
// whose log forgot messages the peer had not acknowledged cannot resume
// from before them: a resume that needs them ends it (4008, SessionLost).

// NewBudgets makes the node's two halves of limit; nil, nil without a
// limit.
func NewBudgets(limit int64) (rx, tx *budget.Budget) {
	if limit <= 0 {
		return nil, nil
	}
	return budget.New(limit / 2), budget.New(limit - limit/2)
}

// budgetState is what a Session keeps of the budget; guarded by s.mu.
type budgetState struct {
	rxAcct, txAcct *budget.Account
	rm             budget.Meter // the queue and the message the application holds last
	lent           int          // what rm counts for that message
	stall          Stall        // readers waiting for room
}

// Stall counts the readers of a session that wait for room (a full
// receive queue, or the budget): what they do not read may hold the acks
// its SendMessage would wait for. It is safe for concurrent use.
type Stall struct {
	n  atomic.Int32
	mu sync.Mutex    // guards ch
	ch chan struct{} // closed when a reader begins to wait
}

// Stalled reports whether a reader waits for room.
func (st *Stall) Stalled() bool { return st.n.Load() > 0 }

// Wait returns a channel closed when a reader begins to wait. Take it
// before asking Stalled, so that a reader that begins between is seen.
func (st *Stall) Wait() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ch == nil {
		st.ch = make(chan struct{})
	}
	return st.ch
}

// Set counts a reader that begins (true) or ends (false) waiting.
func (st *Stall) Set(waiting bool) {
	if !waiting {
		st.n.Add(-1)
		return
	}
	st.n.Add(1)
	st.mu.Lock()
	if st.ch != nil {
		close(st.ch)
		st.ch = nil
	}
	st.mu.Unlock()
}

// initBudget opens s's accounts.
func (s *Session) initBudget() {
	s.rxAcct = budget.NewAccount(s.cfg.RxBudget)
	s.txAcct = budget.NewAccount(s.cfg.TxBudget)
	s.rm.Init(s.rxAcct)
	s.tx.SetAccount(s.txAcct)
	s.txAcct.SetYield(func() {
		s.mu.Lock()
		links := s.links.All()
		s.mu.Unlock()
		s.txmu.Lock()
		s.tx.Yield()
		s.txmu.Unlock()
		for _, l := range links {
			l.DropSpare()
		}
	})
}

// budgetLink puts l on s's accounts, before anyone can send on it.
func (s *Session) budgetLink(l *Path) { l.SetAccounts(s.rxAcct, s.txAcct, s.stall.Set) }

// keptLocked takes over the grant of message m that l's reader handed to
// s (into the queue, or to a ReceiveMessage caller). s.mu is held.
func (s *Session) keptLocked(l *Path, m []byte) { l.MoveRead(m, &s.rm) }

// droppedLocked gives back the grant of message m, which s does not keep
// (a duplicate, or s is closed). s.mu is held.
func (s *Session) droppedLocked(l *Path, m []byte) {
	l.MoveRead(m, &s.rm)
	s.rm.Sub(len(m) + 1)
}

// lendLocked notes that the application now holds m (ReceiveMessage
// returns it): it counts until the application's next ReceiveMessage.
// s.mu is held.
func (s *Session) lendLocked(m []byte) { s.lent = len(m) + 1 }

// returnedLocked: the application called ReceiveMessage again, so it
// holds the message it had no more. s.mu is held.
func (s *Session) returnedLocked() {
	if s.lent > 0 {
		s.rm.Sub(s.lent)
		s.lent = 0
	}
}

// closeBudgetLocked gives back all s holds: it ended, and its peer can
// add nothing more (what is still queued is bounded by ReceiveBuffer).
// s.mu is held.
func (s *Session) closeBudgetLocked() {
	s.rm.Close()
	s.lent = 0
	s.txAcct.Drop()
	s.txmu.Lock()
	s.tx.CloseAccount()
	s.txmu.Unlock()
}
