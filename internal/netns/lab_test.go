package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// udpIn opens a UDP socket in h bound to all addresses, port 9999.
func udpIn(t *testing.T, h *Host) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 9999})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// udpOut opens an unconnected UDP socket in h.
func udpOut(t *testing.T, h *Host) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deliver sends msg from out to dst every 100ms until in receives it, for at
// most 15s (the first packets can be lost while ARP resolves).
func deliver(t *testing.T, out, in *net.UDPConn, dst netip.Addr, msg string) {
	t.Helper()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9999))
	buf := make([]byte, 1500)
	for range 150 {
		if _, err := out.WriteToUDP([]byte(msg), to); err != nil {
			t.Fatalf("send to %s: %v", to, err)
		}
		in.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			n, _, err := in.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == msg {
				return
			}
		}
	}
	t.Fatalf("%q never arrived at %s", msg, to)
}

func TestLabHosts(t *testing.T) {
	t.Parallel()
	lab := New(t, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i, h := range lab.Hosts() {
		if want := netip.AddrFrom4([4]byte{10, 99, 0, byte(i + 1)}); h.Addr() != want {
			t.Errorf("%s: Addr = %s; want %s", h.Name, h.Addr(), want)
		}
		if !strings.HasPrefix(h.NS, lab.Prefix()+"-") {
			t.Errorf("%s: namespace %q lacks the lab prefix %q", h.Name, h.NS, lab.Prefix())
		}
		out, err := h.Run(ctx, "hostname")
		if err != nil || strings.TrimSpace(out) != h.Hostname {
			t.Errorf("%s: hostname = %q, %v; want %q", h.Name, out, err, h.Hostname)
		}
		// The host sees lo and eth0 and nothing of the machine's own.
		out, err = h.Run(ctx, "ip", "-o", "link", "show")
		if err != nil {
			t.Fatal(err)
		}
		var links []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			links = append(links, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
		if strings.Join(links, " ") != "lo eth0" {
			t.Errorf("%s: links %q; want lo and eth0 only", h.Name, links)
		}
		if !strings.Contains(out, "MULTICAST") || !strings.Contains(out, "state UP") {
			t.Errorf("%s: eth0 not up with multicast:\n%s", h.Name, out)
		}
	}
	if lab.Host("b").Name != "b" {
		t.Fatal("Host(b) returned another host")
	}
}

func TestLabLinkDownUpAndAddressChange(t *testing.T) {
	t.Parallel()
	lab := New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	in, out := udpIn(t, b), udpOut(t, a)
	deliver(t, out, in, b.Addr(), "before")

	if err := a.LinkDown(); err != nil {
		t.Fatal(err)
	}
	// Not a timing assertion: a bounded wait for something that must not come.
	for i := range 5 {
		out.WriteToUDP(fmt.Appendf(nil, "while down %d", i), net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.Addr(), 9999)))
	}
	in.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	if n, _, err := in.ReadFromUDP(buf); err == nil {
		t.Fatalf("received %q while a's link was down", buf[:n])
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}

	if err := a.LinkUp(); err != nil {
		t.Fatal(err)
	}
	deliver(t, out, in, b.Addr(), "after")

	moved := netip.MustParsePrefix("10.99.0.42/24")
	if err := b.SetAddr(moved); err != nil {
		t.Fatal(err)
	}
	if b.Addr() != moved.Addr() {
		t.Fatalf("Addr after SetAddr = %s", b.Addr())
	}
	deliver(t, out, in, moved.Addr(), "moved")

	if err := b.SetMTU(1280); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if got, err := b.Run(ctx, "ip", "link", "show", "eth0"); err != nil || !strings.Contains(got, "mtu 1280") {
		t.Fatalf("eth0 after SetMTU(1280): %q, %v", got, err)
	}
	deliver(t, out, in, moved.Addr(), "small mtu")
}

// TestLabMulticast checks what mDNS needs from the bridge: a multicast
// datagram sent by one host reaches the others.
func TestLabMulticast(t *testing.T) {
	t.Parallel()
	lab := New(t, "a", "b", "c")
	group := net.IPv4(239, 255, 99, 99)
	var recv []*ipv4.PacketConn
	for _, name := range []string{"b", "c"} {
		err := lab.Host(name).Do(func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			c, err := net.ListenPacket("udp4", "0.0.0.0:9998")
			if err != nil {
				return err
			}
			p := ipv4.NewPacketConn(c)
			t.Cleanup(func() { p.Close() })
			recv = append(recv, p)
			return p.JoinGroup(ifi, &net.UDPAddr{IP: group})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var send *ipv4.PacketConn
	err := lab.Host("a").Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			return err
		}
		send = ipv4.NewPacketConn(c)
		t.Cleanup(func() { send.Close() })
		return send.SetMulticastInterface(ifi)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recv {
		got := false
		buf := make([]byte, 1500)
		for range 150 {
			if _, err := send.WriteTo([]byte("hello group"), nil, &net.UDPAddr{IP: group, Port: 9998}); err != nil {
				t.Fatal(err)
			}
			r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _, src, err := r.ReadFrom(buf)
			if err == nil && string(buf[:n]) == "hello group" {
				if ip := src.(*net.UDPAddr).IP; !ip.Equal(lab.Host("a").Addr().AsSlice()) {
					t.Fatalf("multicast from %s; want a's address", ip)
				}
				got = true
				break
			}
		}
		if !got {
			t.Fatalf("receiver %d never got the multicast datagram", i)
		}
	}
}

// TestHostStart runs real processes in two hosts: socat listens in b and
// its output is read line by line; socat in a sends to it.
func TestHostStart(t *testing.T) {
	t.Parallel()
	lab := New(t, "a", "b")
	RequireCommands(t, "socat")
	a, b := lab.Host("a"), lab.Host("b")
	recv := b.Start(t, "socat", "-u", "UDP4-RECV:9997", "STDOUT")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dst := fmt.Sprintf("UDP4-SENDTO:%s:9997", b.Addr())
	// socat must be listening before the datagram is sent: retry, boundedly.
	for i := 0; ; i++ {
		send := a.Command(ctx, "socat", "-u", "STDIN", dst)
		send.Stdin = strings.NewReader(fmt.Sprintf("ping %d\n", i))
		if out, err := send.CombinedOutput(); err != nil {
			t.Fatalf("socat in a: %v: %s", err, out)
		}
		wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		line, err := recv.WaitLine(wctx, func(l string) bool { return strings.HasPrefix(l, "ping ") })
		wcancel()
		if err == nil {
			t.Logf("b received %q", line)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("socat in b received nothing: %v", err)
		}
	}
}
