package nearnet

import (
	"net/netip"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/pathmon"
)

// Viability: whether traffic gets through a ready connection, after
// Network framework's viabilityUpdateHandler. A link is inviable while its
// keepalive pings go unanswered (internal/link/keepalive.go) or its local
// address or interface is gone (from the path monitor, below); a Conn is
// viable when its send link is (internal/session). Changes reach
// Config.OnViability after ViabilityDebounce.

// startPathMonitor starts watching interfaces and addresses, once.
func (n *Node) startPathMonitor() {
	if n.cfg.DisablePathMonitor {
		return
	}
	n.pmOnce.Do(func() {
		opts := pathmon.Options{Interfaces: n.cfg.Interfaces, Logger: n.cfg.Logger}
		n.pmStop = session.WatchPaths(opts, n.sessCfg.Go, func(m *pathmon.Monitor) {
			n.mu.Lock()
			n.pm = m
			n.mu.Unlock()
		}, n.pathEvent)
	})
}

func (n *Node) pathMonitor() *pathmon.Monitor {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pm
}

// pathEvent applies a path change to every connection: links whose local
// address went away are dropped (their sessions resume elsewhere), links
// on an interface that went down are inviable until it is up again, and
// anything waiting to connect or resume retries at once.
func (n *Node) pathEvent(e pathmon.Event) {
	n.cfg.Logger.Debug("nearnet: path change", "event", e.String())
	var up map[netip.Addr]bool // nil: no monitor, no address known
	if m := n.pathMonitor(); m != nil {
		up = session.UpAddrs(m.Snapshot())
	}
	conns := n.conns.All()
	n.mu.Lock()
	if n.pathCh != nil {
		close(n.pathCh)
		n.pathCh = nil
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.s.PathChanged(up)
	}
}
