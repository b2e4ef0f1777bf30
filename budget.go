package nearnet

import (
	"github.com/nearnet/nearnet/internal/budget"
	linkpkg "github.com/nearnet/nearnet/internal/link"
)

// The node's memory budget (Config.MemoryBudget, internal/budget): half
// bounds what was received and not yet taken (a link's reader reserves a
// message's bytes from its frame header, before reading it; the grant
// moves with the message to the receive queue, then to the application,
// which holds it until its next ReceiveMessage), half what was sent and
// not yet written (a link's send buffer) or acknowledged (the resume
// log). Each Conn has an account in each half; the places that hold
// bytes meter them under their own locks.

// newBudgets makes the node's two halves; nil, nil without a limit.
func newBudgets(limit int64) (rx, tx *budget.Budget) {
	if limit <= 0 {
		return nil, nil
	}
	return budget.New(limit / 2), budget.New(limit - limit/2)
}

// initBudget opens c's accounts.
func (c *Conn) initBudget() {
	c.rxAcct = budget.NewAccount(c.n.rxBudget)
	c.txAcct = budget.NewAccount(c.n.txBudget)
	c.rm.Init(c.rxAcct)
	c.tx.SetAccount(c.txAcct)
}

// budgetLink puts l on c's accounts, before anyone can send on it.
func (c *Conn) budgetLink(l *link) { l.SetAccounts(c.rxAcct, c.txAcct) }

// keptLocked takes over the grant of message m that l's reader handed to
// c (into the queue, or to a ReceiveMessage caller). c.mu is held.
func (c *Conn) keptLocked(l *linkpkg.Link, m []byte) { l.MoveRead(m, &c.rm) }

// droppedLocked gives back the grant of message m, which c does not keep
// (a duplicate, or c is closed). c.mu is held.
func (c *Conn) droppedLocked(l *linkpkg.Link, m []byte) {
	l.MoveRead(m, &c.rm)
	c.rm.Sub(len(m) + 1)
}

// lendLocked notes that the application now holds m (ReceiveMessage
// returns it): it counts until the application's next ReceiveMessage.
// c.mu is held.
func (c *Conn) lendLocked(m []byte) { c.lent = len(m) + 1 }

// returnedLocked: the application called ReceiveMessage again, so it
// holds the message it had no more. c.mu is held.
func (c *Conn) returnedLocked() {
	if c.lent > 0 {
		c.rm.Sub(c.lent)
		c.lent = 0
	}
}

// closeBudgetLocked gives back all c holds: it ended, and its peer can
// add nothing more (what is still queued is bounded by ReceiveBuffer).
// c.mu is held.
func (c *Conn) closeBudgetLocked() {
	c.rm.Close()
	c.lent = 0
	c.txmu.Lock()
	c.tx.CloseAccount()
	c.txmu.Unlock()
}
