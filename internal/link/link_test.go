package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/mem"
	"github.com/nearnet/nearnet/internal/wire"
)

// recorder is a Handler that records what its link reports.
type recorder struct {
	msgs  chan delivery
	acks  chan uint64
	ka    chan bool
	ended chan ending
	dead  <-chan struct{}
}

type delivery struct {
	seq uint64
	m   string
}

type ending struct {
	err        error
	peerClosed bool
	code       int
	reason     string
}

func newRecorder() *recorder {
	return &recorder{msgs: make(chan delivery, 100), acks: make(chan uint64, 10), ka: make(chan bool, 10), ended: make(chan ending, 1)}
}

func (r *recorder) Deliver(seq uint64, m []byte) bool {
	select {
	case r.msgs <- delivery{seq, string(m)}:
		return true
	case <-r.dead:
		return false
	}
}
func (r *recorder) Base(seq uint64) error                   { return nil }
func (r *recorder) Acked(n uint64) error                    { r.acks <- n; return nil }
func (r *recorder) StreamRequest(q *wire.StreamRequest)     {}
func (r *recorder) StreamRefused(q *wire.StreamRefused)     {}
func (r *recorder) KeepaliveChanged(inviable bool, _ error) { r.ka <- inviable }
func (r *recorder) Ended(err error, peerClosed bool, code int, reason string) {
	r.ended <- ending{err, peerClosed, code, reason}
}
func (r *recorder) TakeDirect(seq uint64, m []byte) DirectResult { return DirectMine }
func (r *recorder) BusyElsewhere() bool                          { return false }
func (r *recorder) OthersWaiting() bool                          { return false }
func (r *recorder) ReadWait() (<-chan struct{}, bool)            { return make(chan struct{}), false }

type acceptor chan transport.Conn

func (a acceptor) HandleConn(c transport.Conn, _ time.Time) { a <- c }
func (a acceptor) HandleFailure(net.Addr, error)            {}

func testConfig() *Config {
	return &Config{MaxMessageSize: 1 << 20, SendBuffer: 1 << 20, CloseTimeout: 5 * time.Second,
		KeepAliveIdle: time.Hour, KeepAliveInterval: time.Hour, KeepAliveCount: 3}
}

// pair returns two handshaken links (dialer, listener) over the in-memory
// transport, not started.
func pair(t *testing.T, cfg *Config) (client, server *Link) {
	return pairWith(t, cfg, cfg)
}

// pairWith is pair with a configuration for each side.
func pairWith(t *testing.T, ccfg, scfg *Config) (client, server *Link) {
	t.Helper()
	nw := mem.NewNetwork()
	acc := make(acceptor, 1)
	st := nw.Transport(mem.Options{})
	ln, err := st.Listen(context.Background(), "mem:0", acc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); st.Close() })
	ct := nw.Transport(mem.Options{})
	cc, err := ct.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-acc
	client, server = New(cc, nil, true, ccfg), New(sc, nil, false, scfg)
	t.Cleanup(func() { client.Fail(errors.New("test over")); server.Fail(errors.New("test over")) })

	client.SetDeadline(time.Now().Add(5 * time.Second))
	server.SetDeadline(time.Now().Add(5 * time.Second))
	errc := make(chan error, 1)
	go func() {
		if err := server.AcceptUpgrade(); err != nil {
			errc <- err
			return
		}
		h, err := server.ReadHello()
		if err == nil && h.Name != "client" {
			err = fmt.Errorf("server read hello %q", h.Name)
		}
		if err == nil {
			b, _ := wire.AppendHello(nil, &wire.Hello{Version: 1, Peer: strings.Repeat("b", 32), Name: "server"})
			err = server.SendHello(b)
		}
		errc <- err
	}()
	b, _ := wire.AppendHello(nil, &wire.Hello{Version: 1, Peer: strings.Repeat("a", 32), Name: "client"})
	if err := client.SendUpgrade("peer.local:1", b); err != nil {
		t.Fatal(err)
	}
	if err := client.ReadUpgradeResponse(); err != nil {
		t.Fatal(err)
	}
	h, err := client.ReadHello()
	if err != nil {
		t.Fatal(err, <-errc)
	}
	if h.Name != "server" {
		t.Fatalf("client read hello %q", h.Name)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	client.SetDeadline(time.Time{})
	server.SetDeadline(time.Time{})
	if client.Key() == "" || client.Key() != server.Key() {
		t.Fatalf("keys %q and %q", client.Key(), server.Key())
	}
	return client, server
}

func start(l *Link) *recorder {
	r := newRecorder()
	r.dead = l.Dead()
	l.Start(r)
	return r
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// Messages arrive in order, numbered from 0, both ways; a close handshake
// ends both links cleanly with the code the closer sent.
func TestMessagesAndCloseHandshake(t *testing.T) {
	c, s := pair(t, testConfig())
	rc, rs := start(c), start(s)
	for i := range 3 {
		if _, err := c.EnqueueData([]byte(fmt.Sprint("to server ", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.EnqueueData([]byte(fmt.Sprint("to client ", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.Enqueue(wire.OpBinary, 0, wire.AppendAck(nil, 3))
	for i := range 3 {
		if d := wait(t, rs.msgs); d != (delivery{uint64(i), fmt.Sprint("to server ", i)}) {
			t.Fatalf("server got %+v", d)
		}
		if d := wait(t, rc.msgs); d != (delivery{uint64(i), fmt.Sprint("to client ", i)}) {
			t.Fatalf("client got %+v", d)
		}
	}
	if n := wait(t, rs.acks); n != 3 {
		t.Fatalf("ack %d", n)
	}
	if sent := c.CloseWith(wire.CloseGoingAway, "bye"); sent != 3 {
		t.Fatalf("CloseWith reported %d messages sent, want 3", sent)
	}
	if _, err := c.EnqueueData([]byte("late")); !errors.Is(err, ErrRetired) {
		t.Fatalf("EnqueueData after CloseWith: %v", err)
	}
	es, ec := wait(t, rs.ended), wait(t, rc.ended)
	if es.err != ErrGracefulEnd || !es.peerClosed || es.code != wire.CloseGoingAway || es.reason != "bye" {
		t.Fatalf("server ended with %+v", es)
	}
	if ec.err != ErrGracefulEnd || !ec.peerClosed || ec.code != wire.CloseGoingAway {
		t.Fatalf("client ended with %+v", ec)
	}
}

// Bad input (here a text message) ends the link that read it with a
// protocol error, and the peer gets a 1002 close frame saying why.
func TestProtocolErrorSendsCloseFrame(t *testing.T) {
	c, s := pair(t, testConfig())
	rc, rs := start(c), start(s)
	c.Enqueue(wire.OpText, 0, []byte("hello?"))
	es := wait(t, rs.ended)
	var pe *wire.ProtocolError
	if !errors.As(es.err, &pe) || es.peerClosed {
		t.Fatalf("server ended with %+v, want a protocol error", es)
	}
	ec := wait(t, rc.ended)
	if !ec.peerClosed || ec.code != wire.CloseProtocolError || ec.reason != pe.What {
		t.Fatalf("client ended with %+v, want close 1002 %q", ec, pe.What)
	}
}

// A message over MaxMessageSize ends the link with 1009.
func TestOversizedMessageSends1009(t *testing.T) {
	cfg := testConfig()
	small := *cfg
	small.MaxMessageSize = 300 // room for the hello
	c, s := pairWith(t, cfg, &small)
	rc, rs := start(c), start(s)
	c.EnqueueData(make([]byte, 1000))
	if es := wait(t, rs.ended); !errors.Is(es.err, wire.ErrMessageTooLarge) {
		t.Fatalf("server ended with %+v", es)
	}
	if ec := wait(t, rc.ended); !ec.peerClosed || ec.code != wire.CloseMessageTooBig {
		t.Fatalf("client ended with %+v, want close 1009", ec)
	}
}

// A receiver reads the link itself, and hands reading back to the
// background reader afterwards.
func TestReadDirect(t *testing.T) {
	c, s := pair(t, testConfig())
	start(c)
	rs := start(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 50 {
		want := fmt.Sprint("m", i)
		c.EnqueueData([]byte(want))
		var got string
		for {
			m, err := s.ReadDirect(ctx)
			if err == ErrNotRead {
				select {
				case d := <-rs.msgs: // the background reader had it
					got = d.m
				default:
					continue
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				got = string(m)
			}
			break
		}
		if got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	// Reading is back with the background reader after resumeGrace.
	time.Sleep(10 * resumeGrace)
	c.EnqueueData([]byte("background"))
	if d := wait(t, rs.msgs); d.m != "background" || d.seq != 50 {
		t.Fatalf("background reader got %+v", d)
	}
}

// A cancelled ctx interrupts a direct read blocked on a silent peer.
func TestReadDirectKicked(t *testing.T) {
	c, s := pair(t, testConfig())
	start(c)
	start(s)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, func() {
		cancel()
		s.Kick() // as the owner does when ctx ends
	})
	if _, err := s.ReadDirect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadDirect: %v, want context.Canceled", err)
	}
}

// Unanswered pings make the link inviable; frames from the peer make it
// viable again.
func TestKeepalive(t *testing.T) {
	cfg := testConfig()
	cfg.KeepAliveIdle, cfg.KeepAliveInterval, cfg.KeepAliveCount = 20*time.Millisecond, 5*time.Millisecond, 2
	c, s := pair(t, cfg)
	rc := start(c)
	// s is not started: it answers nothing.
	if !wait(t, rc.ka) {
		t.Fatal("keepalive reported viable first")
	}
	start(s) // reads the pings and answers them
	if wait(t, rc.ka) {
		t.Fatal("still inviable after the peer answered")
	}
}

// The listener answers a malformed upgrade request with an HTTP error.
func TestAcceptUpgradeRejectsGarbage(t *testing.T) {
	nw := mem.NewNetwork()
	acc := make(acceptor, 1)
	st := nw.Transport(mem.Options{})
	ln, err := st.Listen(context.Background(), "mem:0", acc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer ln.Close()
	cc, err := nw.Transport(mem.Options{}).Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	s := New(<-acc, nil, false, testConfig())
	defer s.Drop()
	go cc.Control().Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if err := s.AcceptUpgrade(); err == nil {
		t.Fatal("accepted an upgrade request without the WebSocket headers")
	}
	buf := make([]byte, 12)
	cc.Control().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cc.Control().Read(buf); err != nil || string(buf[:9]) != "HTTP/1.1 " {
		t.Fatalf("answer %q, %v", buf, err)
	}
}
