package icepath

import (
	"time"

	ptransport "github.com/pion/transport/v5"

	"github.com/nearnet/nearnet/internal/session"
)

// For the root's tests.

// SetNet makes the agents open their sockets on pn (a network namespace's),
// and do run the LAN dials of the return to the LAN.
func (ni *Node) SetNet(pn ptransport.Net, do func(func() error) error) {
	ni.cfg.Net, ni.do = pn, do
}

// Exchanges is the number of sessions with an ICE exchange.
func (ni *Node) Exchanges() int {
	ni.mu.Lock()
	defer ni.mu.Unlock()
	return len(ni.conns)
}

// Ready reports whether s's ICE path stands by.
func (ni *Node) Ready(s *session.Session) bool {
	ni.mu.Lock()
	ic := ni.conns[s]
	ni.mu.Unlock()
	if ic == nil {
		return false
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.path != nil
}

// SetPermitEvery sets how often the node's mailbox renews its permission,
// and so notices that its allocation ended (before Listen).
func (ni *Node) SetPermitEvery(d time.Duration) { ni.first.permitEvery = d }

// Mailbox is the address of the node's mailbox ("" if none), and how
// many it opened.
func (ni *Node) Mailbox() (string, int) {
	ni.first.mu.Lock()
	defer ni.first.mu.Unlock()
	return ni.first.addr, ni.first.opened
}
