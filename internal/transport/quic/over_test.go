package quic

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/security"
)

// plainPath hides a UDP socket behind the bare net.PacketConn interface,
// as an ICE path is: quic-go gets none of a *net.UDPConn's extras.
type plainPath struct{ net.PacketConn }

type connAcceptor chan transport.Conn

func (a connAcceptor) HandleConn(c transport.Conn, _ time.Time) { a <- c }
func (a connAcceptor) HandleFailure(net.Addr, error)            {}

func newTestTransport(t *testing.T) *Transport {
	id, err := security.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tr := New(Options{
		Server: security.ServerConfig(id, nil), Client: security.ClientConfig(id, nil),
		HandshakeTimeout: 10 * time.Second, DropTime: 10 * time.Second, KeepAliveIdle: time.Second,
	})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestOverPacketConn runs a link's control stream, a QUIC stream and a
// datagram over packet paths that are not UDP sockets of the transport's.
func TestOverPacketConn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dialer, listener := newTestTransport(t), newTestTransport(t)
	lpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := make(connAcceptor, 1)
	ln, err := listener.ListenOver(plainPath{lpc}, acc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dc, err := dialer.DialOver(ctx, plainPath{dpc}, lpc.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Control().Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var lc transport.Conn
	select {
	case lc = <-acc:
	case <-ctx.Done():
		t.Fatal("no connection accepted over the path")
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(lc.Control(), buf); err != nil || string(buf) != "hello" {
		t.Fatalf("control stream read %q, %v", buf, err)
	}

	// A stream opened by the listening side: QUIC streams go either way.
	s, err := lc.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("stream")); err != nil {
		t.Fatal(err)
	}
	rs, err := dc.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, 6)
	if _, err := io.ReadFull(rs, buf); err != nil || string(buf) != "stream" {
		t.Fatalf("stream read %q, %v", buf, err)
	}
	s.Abort()
	rs.Abort()

	dc.End(1000, "")
	lc.End(1000, "")
	dc.Control().Close()
}
