package nearnet

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/transport/mem"
	"github.com/nearnet/nearnet/security"
)

// An address that takes the connection and never answers (a filtered or
// dead path) costs an attempt delay, not the handshake timeout: the next
// address is tried beside it (Happy Eyeballs).
func TestConnectRacesPastADeadAddress(t *testing.T) {
	t.Run("mem", func(t *testing.T) {
		nw := mem.NewNetwork()
		tarpit, _ := memTarpit(t, nw)
		a := newMemNode(t, nw, Config{HandshakeTimeout: time.Minute})
		b := newMemNode(t, nw, Config{})
		c, err := a.connectAddrs(ctxT(t), b.ID(), "b", []string{tarpit, b.Addr().String()}, nil, nil)
		if err != nil || c.Peer().ID != b.ID() {
			t.Fatalf("connect past a dead address: %v", err)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		tarpit, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held := make(chan net.Conn, 8)
		go func() {
			for {
				c, err := tarpit.Accept()
				if err != nil {
					return
				}
				held <- c
			}
		}()
		t.Cleanup(func() {
			tarpit.Close()
			for len(held) > 0 {
				(<-held).Close()
			}
		})
		a := newNodeOn(t, TransportTCP, Config{HandshakeTimeout: time.Minute})
		b := newNodeOn(t, TransportTCP, Config{})
		c, err := a.connectAddrs(ctxT(t), PeerID{}, "", []string{tarpit.Addr().String(), b.Addr().String()}, nil, nil)
		if err != nil || c.Peer().ID != b.ID() {
			t.Fatalf("connect past a dead address: %v", err)
		}
	})
}

// A refusal by the peer at one address ends the race at once: it is final.
func TestConnectRaceStopsAtRefusal(t *testing.T) {
	other, _ := security.GenerateKey()
	a := newNode(t, Config{})
	wrong := newNode(t, Config{Key: &other})
	good := newNode(t, Config{})
	_, err := a.connectAddrs(ctxT(t), PeerID{}, "", []string{wrong.Addr().String(), good.Addr().String()}, nil, nil)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("got %v; want the refusal of the first address", err)
	}
}
