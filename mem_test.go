package nearnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/mem"
	"github.com/nearnet/nearnet/security"
)

// The session and link code over the in-memory transport: no sockets, and
// a network the test cuts at will. The same code runs over TCP and QUIC
// in the other tests; these prove it needs nothing of either.

// newMemNode starts a node whose only transport is nw, with TLS over the
// in-memory pipes (so PSK proofs and exporters are real).
func newMemNode(t testing.TB, nw *mem.Network, cfg Config) *Node {
	t.Helper()
	if cfg.Key == nil && cfg.Security == SecurityAuto {
		cfg.Key = testKey
	}
	cfg.Hidden, cfg.DisablePathMonitor = true, true
	n, err := NewNode(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := mem.Options{HandshakeTimeout: n.cfg.HandshakeTimeout, DisableDatagrams: n.cfg.DisableDatagrams}
	if n.cfg.Security != SecurityNone {
		o.Server, o.Client = security.ServerConfig(n.ident, nil), security.ClientConfig(n.ident, nil)
	}
	n.transports = []transport.Transport{nw.Transport(o)}
	n.dialer.Dialers = n.transports
	if err := n.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestMemMessagesStreamsDatagrams(t *testing.T) {
	nw := mem.NewNetwork()
	a, b := newMemNode(t, nw, Config{}), newMemNode(t, nw, Config{})
	ca, cb := pair(t, a, b)
	ctx := ctxT(t)
	sendOne(t, ctx, ca, cb, "hello")
	sendOne(t, ctx, cb, ca, "hello back")
	if ca.Peer().Fingerprint != b.Fingerprint() {
		t.Fatal("the peer's fingerprint is not its identity's")
	}
	// Either side opens streams over this transport.
	for _, fromListener := range []bool{false, true} {
		opened, accepted := streamPair(t, ca, cb, fromListener)
		if _, err := opened.Write([]byte("stream bytes")); err != nil {
			t.Fatal(err)
		}
		opened.CloseWrite()
		got, err := io.ReadAll(accepted)
		if err != nil || string(got) != "stream bytes" {
			t.Fatalf("stream read %q, %v", got, err)
		}
		opened.Close()
		accepted.Close()
	}
	sendUntil(t, ca, cb, "datagram")
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.ReceiveMessage(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after Close: %v, want io.EOF", err)
	}
}

// Both peers dial each other at once, many times: each side keeps the
// same one link, and every message sent meanwhile arrives once, in order.
func TestMemSimultaneousOpen(t *testing.T) {
	const rounds, msgs = 30, 100
	for r := 0; r < rounds; r++ {
		nw := mem.NewNetwork()
		a, b := newMemNode(t, nw, Config{}), newMemNode(t, nw, Config{})
		drainAccept(t, a)
		drainAccept(t, b)
		ctx := ctxT(t)
		var ca, cb *Conn
		var wg sync.WaitGroup
		start := make(chan struct{})
		dial := func(from, to *Node, c **Conn, tag string) {
			defer wg.Done()
			<-start
			conn, err := from.Connect(ctx, to.Addr().String())
			if err != nil {
				t.Errorf("round %d %s: %v", r, tag, err)
				return
			}
			*c = conn
			for k := 0; k < msgs; k++ {
				if err := conn.SendMessage(ctx, []byte(fmt.Sprintf("%s#%d", tag, k))); err != nil {
					t.Errorf("round %d %s send %d: %v", r, tag, k, err)
					return
				}
			}
		}
		wg.Add(2)
		go dial(a, b, &ca, "a")
		go dial(b, a, &cb, "b")
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		for _, x := range []struct {
			c    *Conn
			from string
		}{{ca, "b"}, {cb, "a"}} {
			for k := 0; k < msgs; k++ {
				m, err := x.c.ReceiveMessage(ctx)
				if want := fmt.Sprintf("%s#%d", x.from, k); err != nil || string(m) != want {
					t.Fatalf("round %d: got %q %v, want %q", r, m, err, want)
				}
			}
			waitOneLink(t, x.c)
		}
		if la, lb := ca.s.SendPath(), cb.s.SendPath(); la == nil || lb == nil || la.Key() != lb.Key() {
			t.Fatalf("round %d: the two sides kept different links", r)
		}
	}
}

// A cut in the middle of a stream of messages both ways: the session
// resumes on a new connection with nothing lost or duplicated.
func TestMemCutResumes(t *testing.T) {
	nw := mem.NewNetwork()
	va := newViabilityLog()
	a := newMemNode(t, nw, Config{OnViability: va.record, ViabilityDebounce: time.Millisecond})
	b := newMemNode(t, nw, Config{})
	ca, cb := pair(t, a, b)
	cut := make(chan int, 1)
	exchange(t, ca, cb, 3000, func() { cut <- nw.Cut(b.Addr().String()) })
	if n := <-cut; n == 0 {
		t.Fatal("nothing was cut")
	}
	va.wait(t, Reconnected)
	sendOne(t, ctxT(t), ca, cb, "after the cut")
}

// A peer gone from the network for good (its address no longer answers):
// after ResumeWindow the Conn fails with the messages the peer never
// acknowledged.
func TestMemCutPastWindow(t *testing.T) {
	nw := mem.NewNetwork()
	a := newMemNode(t, nw, Config{ResumeWindow: 2 * time.Second})
	b := newMemNode(t, nw, Config{ResumeWindow: 2 * time.Second})
	ca, cb := pair(t, a, b)
	ctx := ctxT(t)
	sendOne(t, ctx, ca, cb, "before")
	waitUntil(t, func() bool { return ackedAll(ca) }) // acks trail deliveries by up to 20 ms
	nw.Partition(b.Addr().String())
	for i := 0; i < 5; i++ {
		ca.SendMessage(ctx, []byte(fmt.Sprint("lost ", i)))
	}
	<-ca.Done()
	s, _ := ca.State()
	var sl *SessionLostError
	if !errors.As(s.Err, &sl) || len(sl.Undelivered) != 5 || string(sl.Undelivered[0]) != "lost 0" {
		t.Fatalf("state %v, want a SessionLostError with the 5 messages sent after the cut", s)
	}
}

// A listener that takes the connection and never answers: Connect fails
// at the handshake timeout with the stage it was in, not later.
func TestMemPeerNeverAnswers(t *testing.T) {
	nw := mem.NewNetwork()
	silent := nw.Transport(mem.Options{})
	ln, err := silent.Listen(context.Background(), ":0", holdAcceptor{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	a := newMemNode(t, nw, Config{Security: SecurityNone, HandshakeTimeout: 200 * time.Millisecond})
	_, err = a.Connect(ctxT(t), ln.Addr().String())
	var he *HandshakeError
	if !errors.As(err, &he) || he.Stage != "upgrade" {
		t.Fatalf("got %v, want a HandshakeError in the upgrade", err)
	}
}

// holdAcceptor takes connections and never says a word.
type holdAcceptor struct{}

func (holdAcceptor) HandleConn(transport.Conn, time.Time) {}
func (holdAcceptor) HandleFailure(net.Addr, error)        {}

// countingTarpit takes connections and holds them, saying nothing,
// until they close; it counts the ones it got.
type countingTarpit struct{ got chan struct{} }

func (a countingTarpit) HandleConn(c transport.Conn, _ time.Time) {
	a.got <- struct{}{}
	io.Copy(io.Discard, c.Control())
	c.Close()
}

func (countingTarpit) HandleFailure(net.Addr, error) {}

// memTarpit listens on nw as a countingTarpit; it returns the address and
// the channel that gets a value per connection.
func memTarpit(t *testing.T, nw *mem.Network) (string, <-chan struct{}) {
	t.Helper()
	tarpit := nw.Transport(mem.Options{})
	tp := countingTarpit{got: make(chan struct{}, 8)}
	ln, err := tarpit.Listen(context.Background(), ":0", tp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tarpit.Close() })
	return ln.Addr().String(), tp.got
}

// Dials beyond Config.MaxDials wait for a place: a network full of adverts
// pointing at a tarpit holds at most MaxDials connections of the node.
func TestMaxDialsBoundsConcurrentDials(t *testing.T) {
	nw := mem.NewNetwork()
	tarpit, got := memTarpit(t, nw)
	a := newMemNode(t, nw, Config{Security: SecurityNone, MaxDials: 1})
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := a.Connect(ctx1, tarpit)
		first <- err
	}()
	<-got // the first dial holds the only place
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := a.Connect(ctx2, tarpit); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second dial: %v; want it to wait for a place until its ctx ends", err)
	}
	select {
	case <-got:
		t.Fatal("a second dial reached the tarpit while the first held the only place")
	default:
	}
	cancel1()
	<-first
	// The place is free again.
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	go a.Connect(ctx3, tarpit)
	<-got
}
