package nearnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/pathmon"
)

// Viability: whether traffic gets through a ready connection, after
// Network framework's viabilityUpdateHandler. A link is inviable while its
// keepalive pings go unanswered (internal/link/keepalive.go, reported
// through link.KeepaliveChanged) or its local address or interface is gone
// (from the path monitor); a Conn is viable when its send link is.
// Changes reach Config.OnViability after ViabilityDebounce.

// Viable reports whether traffic currently gets through the connection.
func (c *Conn) Viable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.via.Viable()
}

// setViableLocked records the current viability and schedules the
// debounced report (session.Viability). c.mu is held.
func (c *Conn) setViableLocked(v bool, err error) {
	c.via.Set(v, err, session.Real, c.n.cfg.ViabilityDebounce, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state.Terminal() {
			return
		}
		if viable, err, ok := c.via.Due(); ok {
			e := ViabilityEvent{Kind: Viable}
			if !viable {
				e = ViabilityEvent{Kind: Inviable, Err: err}
			}
			c.reportLocked(e)
		}
	})
}

// reportLocked queues e for OnViability (see notifyLocked). c.mu is held.
func (c *Conn) reportLocked(e ViabilityEvent) {
	if f := c.n.cfg.OnViability; f != nil {
		c.notifyLocked(func() { f(c, e) })
	}
}

// linkViability is called after link l's kaInviable or pathDown changed;
// err is why, if l is now inviable. Viability is read from both flags
// under c.mu, never passed in: the keepalive and the path monitor change
// them concurrently, and a value computed before taking the lock could
// undo the other's newer one (the link stayed inviable after both had
// cleared).
func (c *Conn) linkViability(l *link, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.links.Send() == l {
		c.setViableLocked(!l.kaInviable.Load() && !l.pathDown.Load(), err)
	}
}

// errNoPath is why a link is inviable when its address or interface went.
var errNoPath = errors.New("nearnet: the connection's local address or interface went away")

// startPathMonitor starts watching interfaces and addresses, once.
func (n *Node) startPathMonitor() {
	if n.cfg.DisablePathMonitor {
		return
	}
	n.pmOnce.Do(func() {
		m, err := pathmon.New(pathmon.Options{Interfaces: n.cfg.Interfaces, Logger: n.cfg.Logger})
		if err != nil {
			n.cfg.Logger.Warn("nearnet: no path monitor; viability follows keepalives only", "err", err)
			return
		}
		n.mu.Lock()
		n.pm = m
		n.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		n.pmStop = cancel
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			m.Watch(ctx, n.pathEvent)
		}()
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
	up := map[netip.Addr]bool{}
	if m := n.pathMonitor(); m != nil {
		for _, ifi := range m.Snapshot() {
			for _, p := range ifi.Prefixes {
				up[p.Addr()] = ifi.Up() || ifi.Flags&net.FlagLoopback != 0
			}
		}
	}
	n.mu.Lock()
	conns := make([]*Conn, 0, len(n.conns))
	for _, c := range n.conns {
		conns = append(conns, c)
	}
	if n.pathCh != nil {
		close(n.pathCh)
		n.pathCh = nil
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		links := slices.Clone(c.links.All())
		c.mu.Unlock()
		for _, l := range links {
			ap, err := netip.ParseAddrPort(l.t.LocalAddr().String())
			if err != nil {
				continue
			}
			a := ap.Addr().Unmap()
			if a.IsUnspecified() {
				continue // a QUIC link's socket serves every address; QUIC's idle timeout covers a lost one
			}
			isUp, present := up[a]
			switch {
			case !present && !a.IsLoopback():
				l.Fail(errAddrGone)
			case !isUp != l.pathDown.Load():
				l.pathDown.Store(!isUp)
				c.linkViability(l, errNoPath)
			}
		}
		c.kick()
	}
}

// errAddrGone ends a link whose local address was removed: nothing sent
// from it can arrive any more. It is a resumable failure.
var errAddrGone = errors.New("nearnet: the connection's local address was removed")
