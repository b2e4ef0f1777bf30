package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// stackPair returns two stacks joined by a Pipe: 10.9.0.1 and fd00:9::1,
// 10.9.0.2 and fd00:9::2.
func stackPair(t *testing.T) (a, b *Stack) {
	t.Helper()
	da, db := Pipe()
	var err error
	a, err = New(da, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("fd00:9::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = New(db, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd00:9::2/64")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func TestStackTCPConn(t *testing.T) {
	a, b := stackPair(t)
	for _, addr := range []string{"10.9.0.2", "fd00:9::2"} {
		t.Run(addr, func(t *testing.T) {
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
				ln, err := b.Listen("tcp", ":0")
				if err != nil {
					return nil, nil, nil, err
				}
				defer ln.Close()
				_, port, _ := net.SplitHostPort(ln.Addr().String())
				acc := make(chan net.Conn, 1)
				go func() {
					c, _ := ln.Accept()
					acc <- c
				}()
				c1, err := a.DialContext(context.Background(), "tcp", net.JoinHostPort(addr, port))
				if err != nil {
					return nil, nil, nil, err
				}
				c2 := <-acc
				if c2 == nil {
					c1.Close()
					return nil, nil, nil, errors.New("accept failed")
				}
				return c1, c2, func() { c1.Close(); c2.Close() }, nil
			})
		})
	}
}

func TestStackUDP(t *testing.T) {
	a, b := stackPair(t)
	for _, network := range []string{"udp4", "udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			pb, err := b.ListenPacket(network, ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer pb.Close()
			pa, err := a.ListenPacket(network, ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer pa.Close()
			dst := "10.9.0.2"
			if network == "udp6" {
				dst = "fd00:9::2"
			}
			to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(dst), uint16(pb.LocalAddr().(*net.UDPAddr).Port)))
			msg := []byte("hello through the tunnel")
			pb.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := pa.WriteTo(msg, to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, from, err := pb.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("got %q", buf[:n])
			}
			fa := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
			if fa.String() != map[string]string{"udp4": "10.9.0.1", "udp6": "fd00:9::1", "udp": "10.9.0.1"}[network] {
				t.Fatalf("from %v", from)
			}
		})
	}
}

func TestStackBulk(t *testing.T) {
	a, b := stackPair(t)
	ln, err := b.Listen("tcp4", "10.9.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 8 << 20
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		if err == nil && n != size {
			err = errors.New("short")
		}
		done <- err
	}()
	c, err := a.DialContext(context.Background(), "tcp", "10.9.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(c, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestOptionsErrors(t *testing.T) {
	d, _ := Pipe()
	defer d.Close()
	for _, o := range []Options{
		{},
		{Addrs: []netip.Prefix{{}}},
		{Addrs: []netip.Prefix{netip.MustParsePrefix("224.0.0.1/4")}},
		{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}, MTU: 100},
	} {
		_, err := New(d, o)
		var oe *OptionsError
		if !errors.As(err, &oe) {
			t.Errorf("%+v: %v, want an *OptionsError", o, err)
		}
	}
}

// Stacks on channel and function devices, joined by the test's own
// goroutines: a TCP connection works across them.
func TestChanAndFuncDevices(t *testing.T) {
	aOut, bIn := make(chan []byte, 64), make(chan []byte, 64)
	da := NewChanDevice(bIn, aOut)
	var closed = make(chan struct{})
	db, err := NewFuncDevice(func(p []byte) (int, error) {
		select {
		case b := <-aOut:
			return copy(p, b), nil
		case <-closed:
			return 0, ErrClosed
		}
	}, func(p []byte) error {
		select {
		case bIn <- append([]byte(nil), p...):
		case <-closed:
		}
		return nil
	}, func() error { close(closed); return nil })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(da, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(db, Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := b.Listen("tcp", ":9")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := a.DialContext(context.Background(), "tcp", "10.9.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("echo"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "echo" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := NewFuncDevice(nil, nil, nil); err == nil {
		t.Error("NewFuncDevice without functions: no error")
	}
}

// Listening on an address the stack does not have is the system's error.
func TestListenForeignAddress(t *testing.T) {
	a, _ := stackPair(t)
	if _, err := a.Listen("tcp", "127.0.0.1:0"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("Listen on 127.0.0.1: %v, want EADDRNOTAVAIL", err)
	}
	if _, err := a.ListenPacket("udp", "127.0.0.1:0"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("ListenPacket on 127.0.0.1: %v, want EADDRNOTAVAIL", err)
	}
	if _, err := a.DialContext(context.Background(), "tcp", "peer.example:80"); err == nil {
		t.Error("dialing a name: no error")
	}
}
