package nearnet

import (
	"fmt"
	"time"
)

// Paths beyond the LAN (PROTOCOL.md, "Paths beyond the LAN"; internal/icepath).

// ICEServer is a STUN or TURN server for Config.ICEServers: URL is
// "stun:host:port", "turn:host:port" (with "?transport=tcp" for TURN over
// TCP, where UDP is blocked) or "turns:host:port" (TURN over TLS);
// Username and Password are a TURN server's long-term credentials.
type ICEServer struct{ URL, Username, Password string }

// PathKind says how a connection reaches its peer.
type PathKind int

const (
	PathLAN     PathKind = iota // a LAN transport (TCP or QUIC to an address of the peer)
	PathDirect                  // an ICE path through NATs, with no relay
	PathRelayed                 // an ICE path through a TURN relay
)

var pathNames = []string{"lan", "direct", "relayed"}

func (k PathKind) String() string {
	if k >= 0 && int(k) < len(pathNames) {
		return pathNames[k]
	}
	return fmt.Sprintf("PathKind(%d)", int(k))
}

// PathInfo describes the path a connection runs on.
type PathInfo struct {
	Kind PathKind
	// RTT is the path's round-trip time: ICE's latest check on an ICE
	// path, QUIC's smoothed RTT on a relayed path through a mailbox and on
	// a LAN path over QUIC; 0 on a LAN path over TCP (not measured).
	RTT time.Duration
}

// Path returns the path the connection's session runs on now; the zero
// PathInfo (PathLAN) while it has no transport connection.
func (c *Conn) Path() PathInfo {
	k, rtt := c.n.ice.PathOf(c.s.SendPath())
	return PathInfo{PathKind(k), rtt}
}
