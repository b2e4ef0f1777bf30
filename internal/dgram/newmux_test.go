package dgram

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// genericConn hides a UDP socket's type, so that NewMux takes the generic
// path a userspace stack's socket takes.
type genericConn struct{ net.PacketConn }

func newGenericMux(t *testing.T) *Mux {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMux("udp4", genericConn{pc}, 1500, nil)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// A Mux on a PacketConn of no known type carries secure flows both ways,
// and keeps payloads within the MTU it was given.
func TestNewMuxOnPacketConn(t *testing.T) {
	p := flowsOn(t, newGenericMux(t), newGenericMux(t), true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.a.Send([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got, err := p.b.Receive(ctx); err != nil || string(got) != "ping" {
		t.Fatalf("received %q, %v", got, err)
	}
	if err := p.b.Send([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if got, err := p.a.Receive(ctx); err != nil || string(got) != "pong" {
		t.Fatalf("received %q, %v", got, err)
	}
	if n := p.a.MaxSize(); n != maxPayload(1500, false, true) {
		t.Fatalf("MaxSize %d, want the payload of a 1500-byte packet, %d", n, maxPayload(1500, false, true))
	}
	if err := p.a.Send(make([]byte, p.a.MaxSize()+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized send: %v", err)
	}
}

func TestNewMuxRejectsBadArguments(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, tc := range []struct {
		network string
		mtu     int
	}{{"udp", 1500}, {"tcp", 1500}, {"udp4", 100}, {"udp4", 70000}} {
		var ce *ConfigError
		if _, err := NewMux(tc.network, pc, tc.mtu, nil); !errors.As(err, &ce) {
			t.Errorf("NewMux(%q, mtu %d): %v, want a *ConfigError", tc.network, tc.mtu, err)
		}
	}
}
