package quict

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/nearnet/nearnet/security"
)

// socketBuffer is the UDP receive and send buffer size asked of the OS: the
// size below which quic-go logs a warning.
const socketBuffer = 7 << 20

// Transport is one UDP socket that both accepts QUIC connections ([Transport.Listen])
// and dials them ([Transport.Dial]): QUIC tells connections apart by
// connection ID, so a node needs one socket per address family for all of
// them. It is safe for concurrent use by multiple goroutines.
type Transport struct {
	qt     *quic.Transport
	pc     net.PacketConn // closed by Close (quic-go closes only sockets it opened)
	rb, wb int            // socket buffer sizes the OS granted; 0 if unknown

	mu     sync.Mutex
	closed bool                    // guarded by mu
	conns  map[*quic.Conn]struct{} // guarded by mu: open connections, for Close
}

// ListenUDP opens a UDP socket on addr ("127.0.0.1:0", "[::]:4433", ...)
// and returns a Transport on it that owns it.
func ListenUDP(addr string) (*Transport, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quict: %w", err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("quict: %w", err)
	}
	return NewTransport(c), nil
}

// NewTransport returns a Transport on pc, which it takes over: nothing else
// may read from or write to pc any more, and [Transport.Close] closes it.
// A *net.UDPConn gets quic-go's optimisations (batched reads, GSO, ECN,
// path MTU discovery).
//
// The socket's buffers are raised to 7 MiB where the OS allows it (past
// net.core.rmem_max/wmem_max on Linux with CAP_NET_ADMIN), since a QUIC
// connection at full speed overruns the default ones; [Transport.SocketBuffers]
// reports what was granted. Where the OS grants less, quic-go logs one
// warning per process (the environment variable
// QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true silences it).
func NewTransport(pc net.PacketConn) *Transport {
	t := &Transport{qt: &quic.Transport{Conn: pc}, pc: pc, conns: make(map[*quic.Conn]struct{})}
	if uc, ok := pc.(*net.UDPConn); ok {
		t.rb, t.wb = raiseBuffers(uc, socketBuffer)
	}
	return t
}

// SocketBuffers returns the UDP receive and send buffer sizes the OS
// granted, as it reports them (Linux doubles the requested size to account
// for its bookkeeping); 0 where it cannot say.
func (t *Transport) SocketBuffers() (read, write int) { return t.rb, t.wb }

// LocalAddr returns the socket's address.
func (t *Transport) LocalAddr() net.Addr { return t.qt.Conn.LocalAddr() }

// Close closes every connection of t with [CodeGoingAway], then its
// listener and the socket.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for qc := range conns {
		qc.CloseWithError(CodeGoingAway, "transport closed") // sends CONNECTION_CLOSE before it returns
	}
	err := t.qt.Close()
	if cerr := t.pc.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// track makes Close close qc, unless qc is closed first. It closes qc
// itself if t is closed already.
func (t *Transport) track(qc *quic.Conn) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		qc.CloseWithError(CodeGoingAway, "transport closed")
		return
	}
	t.conns[qc] = struct{}{}
	t.mu.Unlock()
	context.AfterFunc(qc.Context(), func() {
		t.mu.Lock()
		delete(t.conns, qc)
		t.mu.Unlock()
	})
}

// Listen starts accepting connections on t. There is at most one listener
// per Transport at a time. tlsConf is typically [security.ServerConfig];
// it is cloned, and the clone gets ALPN "nearnet/1" and TLS 1.3 only.
// Closing the listener leaves t and its connections open.
func (t *Transport) Listen(tlsConf *tls.Config, conf *Config) (*Listener, error) {
	return t.listen(tlsConf, conf, false)
}

func (t *Transport) listen(tlsConf *tls.Config, conf *Config, owned bool) (*Listener, error) {
	c, err := conf.withDefaults()
	if err != nil {
		return nil, err
	}
	if tlsConf == nil {
		return nil, errors.New("quict: Listen needs a TLS configuration (security.ServerConfig)")
	}
	ql, err := t.qt.Listen(cloneTLS(tlsConf), c.quicConfig())
	if err != nil {
		return nil, fmt.Errorf("quict: listen: %w", err)
	}
	return newListener(ql, t, c, owned), nil
}

// Listen opens a UDP socket on addr and accepts QUIC connections on it
// (see [Transport.Listen]); closing the listener closes the socket and
// every connection accepted through it.
func Listen(addr string, tlsConf *tls.Config, conf *Config) (*Listener, error) {
	t, err := ListenUDP(addr)
	if err != nil {
		return nil, err
	}
	l, err := t.listen(tlsConf, conf, true)
	if err != nil {
		t.Close()
		return nil, err
	}
	return l, nil
}

// Dial connects to the listener at addr ("host:port") from t's socket,
// completes the QUIC and TLS handshake and opens the control stream.
// tlsConf is typically [security.ClientConfig]; it is cloned, and the clone
// gets ALPN "nearnet/1" and TLS 1.3 only. ctx bounds the dial; once Dial
// has returned, cancelling it has no effect on the connection.
//
// The listener learns of the connection (its Accept returns it) when the
// first bytes written on [Conn.Control] arrive: the dialer speaks first.
func (t *Transport) Dial(ctx context.Context, addr string, tlsConf *tls.Config, conf *Config) (*Conn, error) {
	c, err := conf.withDefaults()
	if err != nil {
		return nil, err
	}
	if tlsConf == nil {
		return nil, errors.New("quict: Dial needs a TLS configuration (security.ClientConfig)")
	}
	ua, err := resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	return t.dial(ctx, ua, tlsConf, c)
}

// DialAddr is [Transport.Dial] to an address as the socket knows it: for
// a Transport on a packet path other than a UDP socket (an ICE path), the
// remote address that path reports.
func (t *Transport) DialAddr(ctx context.Context, addr net.Addr, tlsConf *tls.Config, conf *Config) (*Conn, error) {
	c, err := conf.withDefaults()
	if err != nil {
		return nil, err
	}
	if tlsConf == nil {
		return nil, errors.New("quict: Dial needs a TLS configuration (security.ClientConfig)")
	}
	return t.dial(ctx, addr, tlsConf, c)
}

func (t *Transport) dial(ctx context.Context, ua net.Addr, tlsConf *tls.Config, c Config) (*Conn, error) {
	qc, err := t.qt.Dial(ctx, ua, cloneTLS(tlsConf), c.quicConfig())
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "quic", Addr: ua, Err: mapErr(err)}
	}
	s, err := qc.OpenStreamSync(ctx)
	if err != nil {
		qc.CloseWithError(CodeGoingAway, "")
		return nil, &net.OpError{Op: "dial", Net: "quic", Addr: ua, Err: fmt.Errorf("opening the control stream: %w", mapErr(err))}
	}
	t.track(qc)
	return newConn(qc, s), nil
}

// Dial connects to addr from a new UDP socket of its own, which is closed
// with the connection. See [Transport.Dial].
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, conf *Config) (*Conn, error) {
	if _, err := conf.withDefaults(); err != nil {
		return nil, err
	}
	network := "udp4"
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "udp6"
	}
	uc, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("quict: %w", err)
	}
	t := NewTransport(uc)
	c, err := t.Dial(ctx, addr, tlsConf, conf)
	if err != nil {
		t.Close()
		return nil, err
	}
	context.AfterFunc(c.qc.Context(), func() { t.Close() })
	return c, nil
}

func resolve(ctx context.Context, addr string) (*net.UDPAddr, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return net.UDPAddrFromAddrPort(ap), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("quict: dial %s: %w", addr, err)
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return nil, fmt.Errorf("quict: dial %s: %w", addr, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("quict: dial %s: %w", addr, err)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(p))), nil
}

// cloneTLS returns a copy of c that offers and requires ALPN "nearnet/1"
// and TLS 1.3 (which QUIC requires anyway).
func cloneTLS(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.NextProtos = []string{security.ALPN}
	c.MinVersion = tls.VersionTLS13
	return c
}

// RaiseBuffers gives c the socket buffers a Transport's socket gets (see
// [NewTransport]), for UDP sockets that carry QUIC without being a
// Transport's own: an ICE agent's. It returns what the kernel granted.
func RaiseBuffers(c *net.UDPConn) (read, write int) { return raiseBuffers(c, socketBuffer) }
