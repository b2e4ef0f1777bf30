package tunnel

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// recorder keeps a copy of every packet its Device sends.
type recorder struct {
	Device
	mu   sync.Mutex
	pkts [][]byte
}

func (r *recorder) WritePacket(p []byte) error {
	r.mu.Lock()
	r.pkts = append(r.pkts, append([]byte(nil), p...))
	r.mu.Unlock()
	return r.Device.WritePacket(p)
}

// seedPackets records the packets of a TCP connection with a little data
// and of a UDP datagram, IPv4 and IPv6, between two stacks.
func seedPackets(f *testing.F) [][]byte {
	pa, pb := Pipe()
	ra := &recorder{Device: pa}
	a, err := New(ra, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("fd00:9::1/64")}})
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	b, err := New(pb, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd00:9::2/64")}})
	if err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	ub, err := b.ListenPacket("udp", ":53")
	if err != nil {
		f.Fatal(err)
	}
	defer ub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, host := range []string{"10.9.0.2", "fd00:9::2"} {
		c, err := a.DialContext(ctx, "tcp", net.JoinHostPort(host, "80"))
		if err != nil {
			f.Fatal(err)
		}
		c.Write([]byte("hi"))
		buf := make([]byte, 16)
		c.Read(buf)
		c.Close()
		u, err := a.DialContext(ctx, "udp", net.JoinHostPort(host, "53"))
		if err != nil {
			f.Fatal(err)
		}
		u.Write([]byte("query"))
		u.Close()
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return ra.pkts
}

// FuzzStackInput feeds the stack arbitrary packets from its Device, as a
// hostile tunnel peer could, with a TCP listener and a UDP socket open:
// nothing may crash it or stop it taking the next packet.
func FuzzStackInput(f *testing.F) {
	for _, p := range seedPackets(f) {
		f.Add(p)
	}
	f.Add([]byte{})
	f.Add([]byte{0x45})
	f.Add([]byte{0x60, 0, 0, 0, 0xff, 0xff, 6, 64})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		in := make(chan []byte)
		done := make(chan struct{})
		var once sync.Once
		dev, _ := NewFuncDevice(func(p []byte) (int, error) {
			select {
			case b := <-in:
				return copy(p, b), nil
			case <-done:
				return 0, ErrClosed
			}
		}, func([]byte) error { return nil }, func() error { once.Do(func() { close(done) }); return nil })
		st, err := New(dev, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd00:9::2/64")}})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ln, err := st.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		u, err := st.ListenPacket("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		in <- pkt
		in <- nil // taken once the packet above went through the stack
	})
}
