package tcp

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nearnet/nearnet/internal/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// silentAcceptor holds each connection as a peer that never finishes its
// handshake would, until the transport closes it.
type silentAcceptor struct{ got chan struct{} }

func (a silentAcceptor) HandleConn(c transport.Conn, _ time.Time) {
	a.got <- struct{}{}
	var b [1]byte
	c.Control().Read(b[:]) // until closed
	c.Close()
}

func (silentAcceptor) HandleFailure(net.Addr, error) {}

// More unauthenticated connections than MaxPending: the oldest are closed,
// the newest kept, so a crowd of silent peers cannot take every descriptor
// and a new peer is still heard.
func TestOldestUnauthenticatedAreShed(t *testing.T) {
	const max, dials = 4, 10
	tr := New(Options{MaxPending: max, HandshakeTimeout: time.Minute})
	a := silentAcceptor{got: make(chan struct{}, dials)}
	ln, err := tr.Listen(context.Background(), "127.0.0.1:0", a)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var conns []net.Conn
	for i := 0; i < dials; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		<-a.got // accepted, in order
	}
	for i, c := range conns {
		var b [1]byte
		if i < dials-max {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(b[:]); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection %d, among the oldest, is still open", i)
			}
			continue
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d, among the newest %d, was closed: %v", i, max, err)
		}
	}
}

// A zone that names no interface is an error that says so, before any
// dial; a known zone (lo) and no zone pass the check.
func TestDialUnknownZone(t *testing.T) {
	tr := New(Options{HandshakeTimeout: time.Second})
	defer tr.Close()
	_, err := tr.Dial(context.Background(), "[fe80::1%nosuch0]:7000")
	var ae *net.AddrError
	if !errors.As(err, &ae) || ae.Addr != "[fe80::1%nosuch0]:7000" {
		t.Fatalf("Dial with an unknown zone = %v; want a *net.AddrError naming the address", err)
	}
	for _, ok := range []string{"[fe80::1%lo]:7000", "[fe80::1%1]:7000", "127.0.0.1:7000", "[::1]:7000"} {
		if err := transport.CheckZone(ok); err != nil {
			t.Errorf("transport.CheckZone(%s) = %v; want nil", ok, err)
		}
	}
}
