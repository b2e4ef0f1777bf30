package icepath

import (
	"time"

	ptransport "github.com/pion/transport/v5"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/transport/ice"
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

// Standby describes s's ICE path standing by (ok false if none).
func (ni *Node) Standby(s *session.Session) (info ice.Info, ok bool) {
	ni.mu.Lock()
	ic := ni.conns[s]
	ni.mu.Unlock()
	if ic == nil {
		return info, false
	}
	ic.mu.Lock()
	p := ic.path
	ic.mu.Unlock()
	if p == nil {
		return info, false
	}
	return p.Info(), true
}

// StandbyPath is s's ICE path standing by, nil if none.
func (ni *Node) StandbyPath(s *session.Session) *ice.Path {
	ni.mu.Lock()
	ic := ni.conns[s]
	ni.mu.Unlock()
	if ic == nil {
		return nil
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.path
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

// SetRelayOnly makes the node's ICE agents gather relayed candidates
// only, so that every path it makes goes through the TURN server (before
// its first exchange).
func (ni *Node) SetRelayOnly() { ni.cfg.RelayOnly = true }

// OnOwnPath reports whether s's current link runs over the ICE path s's
// exchange owns (for a session of first contact: the path it claimed
// last, which it keeps open and closes at its end).
func (ni *Node) OnOwnPath(s *session.Session) bool {
	l := s.SendPath()
	if l == nil {
		return false
	}
	ni.mu.Lock()
	p, ic := ni.paths[l.T], ni.conns[s]
	ni.mu.Unlock()
	if p == nil || ic == nil {
		return false
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.path != nil && p == infoer(ic.path)
}
