package nearnet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// The TCP transport: a link is a TCP connection (TLS 1.3 over it unless
// the security mode is none) carrying the WebSocket upgrade and frames;
// each stream is a TCP connection of its own to the same address, opened
// by the side that dialed the link; datagrams are a UDP flow beside the
// link, on the node's UDP socket for the address family (internal/dgram).

// tcpConn is a link's TCP connection as a [transport.Conn].
type tcpConn struct {
	n        *Node
	raw      net.Conn             // the TCP connection
	wc       *wconn               // raw, as TLS (or WebSocket, without TLS) writes to it
	nc       net.Conn             // wc, or TLS over wc
	cs       *tls.ConnectionState // nil without TLS
	outgoing bool
	proxied  bool   // dialed through a proxy: no datagrams
	dialed   string // the address dialed (outgoing)

	udpLocal dgram.SessionID // our datagram session, 0 if none offered; set during the handshake
}

func newTCPConn(n *Node, raw net.Conn, wc *wconn, nc net.Conn, cs *tls.ConnectionState, outgoing bool) *tcpConn {
	return &tcpConn{n: n, raw: raw, wc: wc, nc: nc, cs: cs, outgoing: outgoing}
}

func (t *tcpConn) Control() net.Conn         { return t.nc }
func (t *tcpConn) TLS() *tls.ConnectionState { return t.cs }
func (t *tcpConn) LocalAddr() net.Addr       { return t.raw.LocalAddr() }

func (t *tcpConn) RemoteAddr() net.Addr {
	if t.proxied {
		return dialedAddr(t.dialed) // the socket is connected to the proxy
	}
	return t.raw.RemoteAddr()
}

// Close closes the socket during the handshake, before anything was
// refused: the peer sees the end after what was written (an HTTP error).
func (t *tcpConn) Close() error { return t.raw.Close() }

// End closes the socket after the link: after a clean close the TLS
// close_notify is already out (the link closed Control); anything else is
// an abort, and the peer sees a reset rather than a lingering close.
func (t *tcpConn) End(code int, reason string) {
	if tc, ok := t.raw.(*net.TCPConn); ok && code != wire.CloseNormal {
		tc.SetLinger(0)
	}
	t.raw.Close()
}

// Refuse closes through TLS (close_notify, then FIN) after the close frame.
func (t *tcpConn) Refuse(code int, reason string) { t.nc.Close() }

func (t *tcpConn) Drain(d time.Duration) {
	t.raw.SetReadDeadline(time.Now().Add(d))
	var buf [16 << 10]byte
	for {
		if _, err := t.raw.Read(buf[:]); err != nil {
			return
		}
	}
}

// OfferDatagrams picks this link's datagram session on the node's UDP
// socket for the peer's address family, unless datagrams are off or the
// link goes through a proxy (UDP cannot follow its tunnel).
func (t *tcpConn) OfferDatagrams(h *wire.Hello) {
	if t.n.cfg.DisableDatagrams || t.proxied {
		return
	}
	ap, err := netip.ParseAddrPort(t.raw.RemoteAddr().String())
	if err != nil {
		return
	}
	m, err := t.n.muxFor(ap.Addr())
	if err != nil {
		t.n.cfg.Logger.Warn("nearnet: no datagrams on this connection", "err", err)
		return
	}
	t.udpLocal = dgram.NewSessionID()
	h.UDPPort = m.Port()
	h.UDPSession = fmt.Sprintf("%016x", uint64(t.udpLocal))
}

// Datagrams opens the UDP flow both hellos offered, keyed from the TLS
// exporter (PROTOCOL.md, "Datagrams").
func (t *tcpConn) Datagrams(peer *wire.Hello) (transport.Flow, error) {
	if t.udpLocal == 0 || peer.UDPPort == 0 {
		return nil, nil
	}
	remoteSID, err := strconv.ParseUint(peer.UDPSession, 16, 64)
	if err != nil {
		return nil, err
	}
	ap, err := netip.ParseAddrPort(t.raw.RemoteAddr().String())
	if err != nil {
		return nil, err
	}
	m, err := t.n.muxFor(ap.Addr())
	if err != nil {
		return nil, err
	}
	fc := dgram.FlowConfig{
		LocalSession:  t.udpLocal,
		RemoteSession: dgram.SessionID(remoteSID),
		RemoteAddr:    netip.AddrPortFrom(ap.Addr().Unmap(), uint16(peer.UDPPort)),
	}
	if t.cs != nil {
		dialer, listener := fc.LocalSession, fc.RemoteSession
		if !t.outgoing {
			dialer, listener = listener, dialer
		}
		material, err := t.cs.ExportKeyingMaterial(dgram.ExporterLabel, dgram.ExporterContext(dialer, listener), dgram.ExporterLength)
		if err != nil {
			return nil, err
		}
		if fc.Keys, err = dgram.KeysFromExporter(material, t.outgoing); err != nil {
			return nil, err
		}
	}
	f, err := m.NewFlow(fc)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// OpenStream dials a stream connection to the address the link was
// dialed to (through the same proxy); only the link's dialer can.
func (t *tcpConn) OpenStream(ctx context.Context) (transport.Stream, error) {
	if !t.outgoing {
		return nil, transport.ErrPeerOpens
	}
	n := t.n
	raw, _, err := n.dialTCP(ctx, t.dialed)
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(n.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(aLongTimeAgo) })
	defer stop()
	st := &tcpStream{Conn: raw, raw: raw}
	if n.clientTLS != nil {
		wc := newWConn(raw)
		wc.readAhead(n.streamReadAhead())
		tc := tls.Client(wc, n.clientTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		cs := tc.ConnectionState()
		st.Conn, st.cs = tc, &cs
	}
	return st, nil
}

// AcceptStream: a TCP link's streams arrive at the node's listener.
func (t *tcpConn) AcceptStream(context.Context) (transport.Stream, error) {
	return nil, transport.ErrNoStreams
}

// tcpStream is a stream connection: TLS over TCP, or TCP alone.
type tcpStream struct {
	net.Conn                      // TLS over raw, or raw
	raw      net.Conn             // the TCP connection
	cs       *tls.ConnectionState // nil without TLS
}

func (s *tcpStream) TLS() *tls.ConnectionState { return s.cs }

// Sink is a ring of size bytes written by a goroutine of its own
// (streamwriter.go): crypto/tls makes a write timeout permanent.
func (s *tcpStream) Sink(size int, grace time.Duration, onEnd func()) transport.Sink {
	return newStreamWriter(s.Conn, s.raw, size, grace, onEnd)
}

func (s *tcpStream) Abort() {
	if tc, ok := s.raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	s.raw.Close()
}

var (
	_ transport.Conn   = (*tcpConn)(nil)
	_ transport.Stream = (*tcpStream)(nil)
)
