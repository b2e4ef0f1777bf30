package ice

import (
	"net"
	"sync"
	"time"

	pice "github.com/pion/ice/v4"
)

// Kind says how a path reaches the peer.
type Kind int

const (
	Direct  Kind = iota // host, server-reflexive or peer-reflexive candidates on both sides
	Relayed             // through a TURN server on at least one side
)

func (k Kind) String() string {
	if k == Relayed {
		return "relayed"
	}
	return "direct"
}

// Info describes the pair a path uses now.
type Info struct {
	Kind   Kind
	Local  string        // the local candidate's type: "host", "srflx", "prflx" or "relay"
	Remote string        // the peer's
	Relay  string        // for a local relay candidate, how it reaches the TURN server: "udp", "tcp" or "tls"
	RTT    time.Duration // the latest round trip of a check on the pair; 0 before one
}

// Path is the way to the peer that ICE chose, as a net.PacketConn for QUIC:
// every packet goes over the pair nominated at the moment (the pair may
// change under it, the addresses it reports do not), and a packet that
// cannot be sent is dropped, as UDP drops it. Closing it closes its Agent.
type Path struct {
	a    *Agent
	c    *pice.Conn
	once sync.Once

	mu      sync.Mutex // guards the fields below (lease.go)
	cur     *lease
	reading bool
	readErr error
}

func newPath(a *Agent, c *pice.Conn) *Path { return &Path{a: a, c: c} }

// pathAddr names the two ends of a path: the pair under it may change,
// so QUIC sees one fixed address for the peer. It is not an IP address,
// so nothing takes it for an interface's.
type pathAddr string

func (a pathAddr) Network() string { return "ice" }
func (a pathAddr) String() string  { return string(a) }

// PeerAddr is the address a Path reports for the peer.
var PeerAddr net.Addr = pathAddr("ice-peer")

var localAddr net.Addr = pathAddr("ice-local")

func (p *Path) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := p.c.Read(b)
	return n, PeerAddr, err
}

func (p *Path) WriteTo(b []byte, _ net.Addr) (int, error) {
	if _, err := p.c.Write(b); err != nil {
		if p.a.closed() {
			return 0, net.ErrClosed
		}
		// No pair right now (a switch, consent lost): dropped, as UDP
		// drops a packet; QUIC retransmits.
	}
	return len(b), nil
}

func (p *Path) Close() error {
	p.once.Do(func() { p.a.Close() })
	return nil
}

func (p *Path) LocalAddr() net.Addr { return localAddr }

// SetReadBuffer and SetWriteBuffer do nothing: the sockets under a path
// are the agent's (quic-go asks to raise them, and warns where it cannot
// ask).
func (p *Path) SetReadBuffer(int) error            { return nil }
func (p *Path) SetWriteBuffer(int) error           { return nil }
func (p *Path) SetDeadline(t time.Time) error      { return p.c.SetDeadline(t) }
func (p *Path) SetReadDeadline(t time.Time) error  { return p.c.SetReadDeadline(t) }
func (p *Path) SetWriteDeadline(t time.Time) error { return nil }

// Dead is closed when ICE gave up on the path (no pair answered its
// checks for Config.CheckTimeout: a NAT mapping or a TURN allocation
// gone) or it closed. A dead path does not come back.
func (p *Path) Dead() <-chan struct{} { return p.a.dead }

// Alive reports whether the pair in use still gets ICE's answers (not
// disconnected or failed).
func (p *Path) Alive() bool { return p.a.alive() }

// Answering reports whether the path is alive and the peer's candidate
// of the pair in use was heard from within d (a check, its answer or
// data; ICE's keepalive asks for an answer every second when nothing else
// arrives): sooner than Alive, it tells a path whose relay or mapping
// just went away.
func (p *Path) Answering(d time.Duration) bool {
	if !p.Alive() {
		return false
	}
	sel, ok := p.a.a.GetSelectedCandidatePairStats()
	if !ok {
		return false
	}
	for _, st := range p.a.a.GetCandidatePairsStats() {
		if st.LocalCandidateID == sel.LocalCandidateID && st.RemoteCandidateID == sel.RemoteCandidateID {
			heard := st.LastPacketReceivedTimestamp // data only
			for _, t := range []time.Time{st.LastResponseTimestamp, st.LastRequestReceivedTimestamp} {
				if t.After(heard) {
					heard = t
				}
			}
			return time.Since(heard) < d
		}
	}
	return false
}

// Info describes the pair in use.
func (p *Path) Info() Info {
	var inf Info
	pair, err := p.a.a.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return inf
	}
	inf.Local, inf.Remote = pair.Local.Type().String(), pair.Remote.Type().String()
	if pair.Local.Type() == pice.CandidateTypeRelay || pair.Remote.Type() == pice.CandidateTypeRelay {
		inf.Kind = Relayed
	}
	if r, ok := pair.Local.(*pice.CandidateRelay); ok {
		inf.Relay = r.RelayProtocol()
	}
	if st, ok := p.a.a.GetSelectedCandidatePairStats(); ok {
		inf.RTT = time.Duration(st.CurrentRoundTripTime * float64(time.Second))
	}
	return inf
}
