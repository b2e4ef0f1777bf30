package nearnet

import (
	"time"

	"github.com/nearnet/nearnet/internal/icepath"
	"github.com/nearnet/nearnet/internal/transport/ice"
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

func (k PathKind) String() string { return icepath.Kind(k).String() }

// ICEServerError is a server of Config.ICEServers that failed (a
// PathUnavailable [ViabilityEvent]): it refused the credentials
// (ErrTURNUnauthorized), did not answer in 3 s (ErrICEServerTimeout, a
// net.Error timeout), or a turns: TLS handshake failed (Err wraps it).
type ICEServerError struct {
	URL string // the server's URL, never its credentials
	Err error
}

func (e *ICEServerError) Error() string { return (*ice.ServerError)(e).Error() }
func (e *ICEServerError) Unwrap() error { return e.Err }

var (
	ErrTURNUnauthorized = ice.ErrUnauthorized // a TURN server answered 401 to the credentials
	ErrICEServerTimeout = ice.ErrNoAnswer     // a STUN or TURN server did not answer
	ErrNoICEPath        = ice.ErrNoPath       // no candidate pair of an ICE exchange reached the peer
)

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
