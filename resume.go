package nearnet

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/nearnet/nearnet/internal/enum"
)

// Session resume (PROTOCOL.md, "Session resume"; internal/session does
// it): when the transport connection breaks without a close frame, the
// Conn is suspended instead of failed, the side that dialed the broken
// link redials, and the new link carries every message not acknowledged.

// SessionLostError is the error of a connection whose transport broke and
// did not come back within Config.ResumeWindow, or whose peer no longer
// had the session or the messages to resume it (close code 4008).
// Undelivered holds, in order, the messages the peer never acknowledged:
// the application decides whether to send them again. Acks trail by at
// most 20 ms, so the first may have arrived just before the break; every
// message not listed did arrive, unless Err says some were not kept.
type SessionLostError struct {
	Err         error // why the last transport connection ended
	Undelivered [][]byte
}

func (e *SessionLostError) Error() string {
	return fmt.Sprintf("nearnet: connection lost and not resumed (%d messages not delivered): %v", len(e.Undelivered), e.Err)
}

func (e *SessionLostError) Unwrap() error { return e.Err }

// ViabilityKind says what happened to a connection's path.
type ViabilityKind int

const (
	Inviable        ViabilityKind = iota // no traffic gets through (keepalives fail, the interface or address went away, the transport broke)
	Viable                               // traffic gets through again
	Reconnected                          // the session resumed on a new transport connection
	PathUnavailable                      // a path beyond the LAN could not be prepared (Err: an *ICEServerError, ErrNoICEPath); the connection keeps its path
)

func (k ViabilityKind) String() string {
	return enum.Name(k, "ViabilityKind", "inviable", "viable", "reconnected", "path unavailable")
}

// ViabilityEvent is reported through Config.OnViability.
type ViabilityEvent struct {
	Kind ViabilityKind
	Err  error    // why it became inviable, if known
	Path PathInfo // for Reconnected: the path the session now runs on
}

// redialRound tries to reach c's peer again for its suspended session:
// addr first, then any address discovery knows, attaching the first link
// that works. refused reports that every host answered and nothing
// listens (the peer's node is gone), with the last error.
func (n *Node) redialRound(ctx context.Context, c *Conn, addr string) (refused bool, last error) {
	return n.dialer.Round(ctx, n.addrsOf(c.id, addr), c.s, func(l *link) { n.attach(l) })
}

// rediscoverTime bounds the browse of one redial round.
const rediscoverTime = time.Second

// rediscover browses for peer id until it is found, ctx ends or
// rediscoverTime has passed; Browse records what it finds for addrsOf. A
// Browse the application runs keeps those current too, but a node that
// only dialed has none. Discovery does not cross proxies: with one, the
// peer's address cannot change under us.
func (n *Node) rediscover(ctx context.Context, id PeerID) {
	if n.cfg.Proxy != "" || n.cfg.ProxyFromEnvironment {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, rediscoverTime)
	defer cancel()
	n.Browse(ctx, func(e BrowseEvent) {
		if e.Kind != Lost && e.ID == id {
			cancel()
		}
	})
}

// addrsOf returns first, then the addresses discovery has for peer id.
func (n *Node) addrsOf(id PeerID, first string) []string {
	out := []string{first}
	n.mu.Lock()
	a, ok := n.adverts[id]
	n.mu.Unlock()
	if ok {
		for _, ip := range a.Addrs {
			s := net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
