package nearnet

import "github.com/nearnet/nearnet/pathmon"

// Viability: whether traffic gets through a ready connection, after
// Network framework's viabilityUpdateHandler. A link is inviable while its
// keepalive pings go unanswered (internal/link/keepalive.go) or its local
// address or interface is gone (from the path monitor, below); a Conn is
// viable when its send link is (internal/session). Changes reach
// Config.OnViability after ViabilityDebounce. The path monitor is
// session.PathWatch.

// startPathMonitor starts watching interfaces and addresses, once.
func (n *Node) startPathMonitor() {
	if !n.cfg.DisablePathMonitor {
		n.paths.Start(pathmon.Options{Interfaces: n.cfg.Interfaces, Logger: n.cfg.Logger}, n.sessCfg.Go, n.conns.Sessions)
	}
}
