package ice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// A Mailbox is a TURN allocation whose relayed address a peer learned
// over the session, so that the peer can reach this side again after
// moving to another network, when no pair of an earlier ICE exchange
// works any more: the mover opens a new allocation on the same TURN
// server and knocks on the other side's mailbox, which lets it in (its
// permission is for the server's relay address, which every allocation
// there shares). The packets that follow are the QUIC connection of a
// relayed path, until an ICE path or the LAN answers again.
type Mailbox struct {
	client *turn.Client
	relay  net.PacketConn
	sock   net.PacketConn

	mu     sync.Mutex // guards the fields below
	peer   netip.AddrPort
	path   *MailPath
	knocks chan Knock
	done   chan struct{}
	once   sync.Once
}

// Knock is a knock that arrived at a mailbox.
type Knock struct {
	From  netip.AddrPort
	Token []byte
}

// knockMagic starts a knock: a byte no QUIC packet starts with (QUIC
// version 1 sets the fixed bit, 0x40, in every packet).
var knockMagic = []byte("\x00nearnet-knock\x00")

// ErrNoTURN is the error of OpenMailbox for a Config without a TURN
// server over UDP.
var ErrNoTURN = errors.New("ice: no TURN server over UDP for a mailbox")

// OpenMailbox allocates a mailbox on the first TURN server of cfg that
// is reached over UDP.
func OpenMailbox(ctx context.Context, cfg Config) (*Mailbox, error) {
	urls, err := cfg.urls()
	if err != nil {
		return nil, err
	}
	var u *stun.URI
	for _, x := range urls {
		if x.Scheme == stun.SchemeTypeTURN && x.Proto == stun.ProtoTypeUDP {
			u = x
			break
		}
	}
	if u == nil {
		return nil, ErrNoTURN
	}
	n := cfg.Net
	if n == nil {
		if n, err = newBufNet(); err != nil {
			return nil, err
		}
	}
	sock, err := n.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("ice: mailbox socket: %w", err)
	}
	server := net.JoinHostPort(u.Host, fmt.Sprint(u.Port))
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server, TURNServerAddr: server,
		Username: u.Username, Password: u.Password,
		Conn: sock, Net: n, LoggerFactory: slogFactory{cfg.logger()},
	})
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("ice: mailbox: %w", err)
	}
	if err := c.Listen(); err != nil {
		c.Close()
		sock.Close()
		return nil, fmt.Errorf("ice: mailbox: %w", err)
	}
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		c.Close()
		sock.Close()
		return nil, fmt.Errorf("ice: mailbox allocation on %s: %w", server, err)
	}
	m := &Mailbox{client: c, relay: relay, sock: sock, knocks: make(chan Knock, 16), done: make(chan struct{})}
	go m.readLoop()
	return m, nil
}

// Addr is the mailbox's relayed address, for the peer.
func (m *Mailbox) Addr() string { return m.relay.LocalAddr().String() }

// Knocks delivers the knocks that arrive.
func (m *Mailbox) Knocks() <-chan Knock { return m.knocks }

// MaxKnock is the largest knock, magic included: one UDP payload that no
// path between a TURN client and its server fragments.
const MaxKnock = 1200

// ErrKnockTooLarge is the error of a Knock whose body would make it
// longer than MaxKnock.
var ErrKnockTooLarge = errors.New("ice: knock longer than 1200 bytes")

// Knock sends a knock with body (nil: a bare knock) to a peer's mailbox,
// and so lets the peer's packets in: TURN permits the addresses this side
// sends to.
func (m *Mailbox) Knock(to string, body []byte) error {
	if len(knockMagic)+len(body) > MaxKnock {
		return ErrKnockTooLarge
	}
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return err
	}
	_, err = m.relay.WriteTo(append(append([]byte(nil), knockMagic...), body...), ua)
	return err
}

// Permit lets packets from every relayed address of ip (a TURN server's
// relay address) into the mailbox before this side sent to any of them,
// so that a peer it never met can knock from an allocation on that
// server. A TURN permission lasts 5 minutes (RFC 8656 section 9): call it
// again before then.
func (m *Mailbox) Permit(ip netip.Addr) error {
	return m.client.CreatePermission(&net.UDPAddr{IP: ip.AsSlice()})
}

// RelayIP is the IP address of the mailbox's relayed address.
func (m *Mailbox) RelayIP() netip.Addr {
	if ua, ok := m.relay.LocalAddr().(*net.UDPAddr); ok {
		ip, _ := netip.AddrFromSlice(ua.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// Done is closed when the mailbox is closed (by Close, or because its
// allocation ended).
func (m *Mailbox) Done() <-chan struct{} { return m.done }

func (m *Mailbox) readLoop() {
	defer m.Close()
	b := make([]byte, 1500)
	for {
		n, from, err := m.relay.ReadFrom(b)
		if err != nil {
			return
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := ua.AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if bytes.HasPrefix(b[:n], knockMagic) && n <= MaxKnock {
			select {
			case m.knocks <- Knock{From: ap, Token: append([]byte(nil), b[len(knockMagic):n]...)}:
			default:
			}
			continue
		}
		m.mu.Lock()
		p := m.path
		ok = p != nil && m.peer == ap
		m.mu.Unlock()
		if ok {
			select {
			case p.in <- append([]byte(nil), b[:n]...):
			default:
			}
		}
	}
}

// Path returns the relayed path to peer through the mailbox, a
// net.PacketConn for QUIC (it replaces any earlier one).
func (m *Mailbox) Path(peer netip.AddrPort) *MailPath {
	p := &MailPath{inbox: newInbox(), m: m, to: net.UDPAddrFromAddrPort(peer)}
	m.mu.Lock()
	if m.path != nil {
		m.path.close()
	}
	m.peer, m.path = peer, p
	m.mu.Unlock()
	return p
}

// Close releases the allocation.
func (m *Mailbox) Close() {
	m.once.Do(func() {
		close(m.done)
		m.relay.Close()
		m.client.Close()
		m.sock.Close()
	})
}

// Info is a mailbox path's: relayed.
func (p *MailPath) Info() Info {
	return Info{Kind: Relayed, Local: "relay", Remote: "relay", Relay: "udp"}
}

// MailPath is a relayed path through a mailbox, with the contract of a
// Path's Lease.
type MailPath struct {
	inbox
	m  *Mailbox
	to *net.UDPAddr
}

func (p *MailPath) ReadFrom(b []byte) (int, net.Addr, error) { return p.read(b, p.m.done) }

func (p *MailPath) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-p.done:
		return 0, net.ErrClosed
	default:
	}
	p.m.relay.WriteTo(b, p.to) // a packet that cannot go is lost, as over UDP
	return len(b), nil
}

func (p *MailPath) Close() error {
	p.m.mu.Lock()
	if p.m.path == p {
		p.m.path = nil
	}
	p.m.mu.Unlock()
	p.close()
	return nil
}
