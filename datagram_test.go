package nearnet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/transport/tcp"
)

// sendUntil sends p from c until r receives a datagram equal to it
// (datagrams may be lost, even on loopback), at most 50 times.
func sendUntil(t *testing.T, c, r *Conn, p string) {
	t.Helper()
	for i := 0; i < 50; i++ {
		if err := c.SendDatagram([]byte(p)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		got, err := r.ReceiveDatagram(ctx)
		cancel()
		if err == nil && string(got) == p {
			return
		}
	}
	t.Fatalf("datagram %q never arrived", p)
}

func TestDatagramsRoundTrip(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		for _, mode := range []string{"psk", "none"} {
			t.Run(mode, func(t *testing.T) {
				cfg := Config{}
				if mode == "none" {
					cfg.Security = SecurityNone
				}
				a, b := newNodeOn(t, tr, cfg), newNodeOn(t, tr, cfg)
				ca, cb := pair(t, a, b)
				sendUntil(t, ca, cb, "ping")
				sendUntil(t, cb, ca, "pong")
				max := ca.MaxDatagramSize()
				if max <= 0 || max > 65535 {
					t.Fatalf("MaxDatagramSize %d", max)
				}
				sendUntil(t, ca, cb, string(make([]byte, max)))
				err := ca.SendDatagram(make([]byte, max+1))
				var tl *DatagramTooLargeError
				if !errors.Is(err, ErrDatagramTooLarge) || !errors.As(err, &tl) || tl.Max != max {
					t.Fatalf("oversized datagram: %v", err)
				}
				s := ca.DatagramStats()
				if s.Sent == 0 || s.Received == 0 || s.Dropped["too_large"] != 1 {
					t.Fatalf("stats %+v", s)
				}
			})
		}
	})
}

func TestDatagramsOffOnOneSide(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{DisableDatagrams: true}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		for _, c := range []*Conn{ca, cb} {
			if err := c.SendDatagram([]byte("x")); !errors.Is(err, ErrDatagramsUnavailable) {
				t.Fatalf("send: %v", err)
			}
			if _, err := c.ReceiveDatagram(ctxT(t)); !errors.Is(err, ErrDatagramsUnavailable) {
				t.Fatalf("receive: %v", err)
			}
			if m := c.MaxDatagramSize(); m != 0 {
				t.Fatalf("MaxDatagramSize %d", m)
			}
		}
		// Messages are unaffected.
		if err := ca.SendMessage(ctxT(t), []byte("still")); err != nil {
			t.Fatal(err)
		}
		if m, err := cb.ReceiveMessage(ctxT(t)); err != nil || string(m) != "still" {
			t.Fatalf("%q %v", m, err)
		}
	})
}

// Many connections, one UDP socket per node, and nothing left behind when
// they close (goleak in TestMain checks goroutines).
func TestDatagramsShareOneSocket(t *testing.T) {
	b := newNode(t, Config{})
	for i := 0; i < 20; i++ {
		a := newNode(t, Config{})
		ca, cb := pair(t, a, b)
		sendUntil(t, ca, cb, fmt.Sprint("hello ", i))
		ca.Close()
		a.Close()
		<-cb.Done()
	}
	m4, m6 := b.transports[0].(*tcp.Transport).DatagramSockets()
	if m4 == nil || m6 != nil {
		t.Fatal("want exactly one (IPv4) datagram socket")
	}
	// Flows of connections the peer closed linger for session.DatagramLinger.
	deadline := time.Now().Add(10 * session.DatagramLinger)
	for m4.Flows() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d flows left open after every connection closed", m4.Flows())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDatagramAfterCloseReportsClosed(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, _ := pair(t, a, b)
		done := make(chan error, 1)
		go func() {
			_, err := ca.ReceiveDatagram(context.Background())
			done <- err
		}()
		time.Sleep(10 * time.Millisecond) // let it block
		ca.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked ReceiveDatagram after Close: %v", err)
		}
	})
}

// A datagram sent right before a graceful Close still reaches a receiver
// that asks for it (UDP and the TCP close race; the flow lingers).
func TestDatagramSentBeforeCloseIsReceived(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		lost := 0
		const rounds = 12
		for i := 0; i < rounds; i++ {
			a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
			ca, cb := pair(t, a, b)
			if err := ca.SendDatagram([]byte("last words")); err != nil {
				t.Fatal(err)
			}
			ca.Close()
			<-cb.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m, err := cb.ReceiveDatagram(ctx)
			cancel()
			if err != nil {
				lost++
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatal("ReceiveDatagram on a closed connection blocked")
				}
			} else if string(m) != "last words" {
				t.Fatalf("got %q", m)
			}
			if _, err := cb.ReceiveDatagram(context.Background()); err == nil {
				t.Fatal("a second datagram appeared")
			}
			a.Close()
			b.Close()
		}
		// Loopback can still drop a datagram under load; it must be rare.
		t.Logf("%d of %d lost", lost, rounds)
		if lost > 2 {
			t.Fatalf("%d of %d datagrams sent before Close were lost", lost, rounds)
		}
	})
}
