package session

import "github.com/nearnet/nearnet/internal/budget"

// The node's memory budget (the root's Config.MemoryBudget,
// internal/budget): half bounds what was received and not yet taken (a
// link's reader reserves a message's bytes from its frame header, before
// reading it; the grant moves with the message to the receive queue, then
// to the application, which holds it until its next ReceiveMessage), half
// what was sent and not yet written (a link's send buffer) or acknowledged
// (the resume log). Each Session has an account in each half; the places
// that hold bytes meter them under their own locks.

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
}

// initBudget opens s's accounts.
func (s *Session) initBudget() {
	s.rxAcct = budget.NewAccount(s.cfg.RxBudget)
	s.txAcct = budget.NewAccount(s.cfg.TxBudget)
	s.rm.Init(s.rxAcct)
	s.tx.SetAccount(s.txAcct)
}

// budgetLink puts l on s's accounts, before anyone can send on it.
func (s *Session) budgetLink(l *Path) { l.SetAccounts(s.rxAcct, s.txAcct) }

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
	s.txmu.Lock()
	s.tx.CloseAccount()
	s.txmu.Unlock()
}
