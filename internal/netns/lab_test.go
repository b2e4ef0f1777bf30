//go:build linux

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

// TestLabWire gives two hosts a second link, a direct veth pair beside the
// bridge: each end holds its own address, and traffic over it still flows
// with the bridge cut.
func TestLabWire(t *testing.T) {
	t.Parallel()
	lab := New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	lab.Wire(a, b, "eth1", netip.MustParsePrefix("10.98.7.0/24"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, c := range []struct {
		h    *Host
		addr string
	}{{a, "10.98.7.1/24"}, {b, "10.98.7.2/24"}} {
		out, err := c.h.Run(ctx, "ip", "-o", "-4", "addr", "show", "dev", "eth1")
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(out); len(f) < 4 || f[3] != c.addr {
			t.Errorf("%s: eth1 has %q; want %s only", c.h.Name, out, c.addr)
		}
		if out, err = c.h.Run(ctx, "ip", "-o", "link", "show", "eth1"); err != nil || !strings.Contains(out, "MULTICAST") || !strings.Contains(out, "state UP") {
			t.Errorf("%s: eth1 not up with multicast: %q, %v", c.h.Name, out, err)
		}
	}
	if a.Addr() != netip.MustParseAddr("10.99.0.1") {
		t.Errorf("a.Addr() = %s after Wire; want eth0's 10.99.0.1", a.Addr())
	}
	in, out := udpIn(t, b), udpOut(t, a)
	deliver(t, out, in, b.Addr(), "over the bridge")
	if err := a.LinkDown(); err != nil {
		t.Fatal(err)
	}
	deliver(t, out, in, netip.MustParseAddr("10.98.7.2"), "over the wire")
}

// TestLabWireRejects checks the arguments Wire refuses before touching
// anything.
func TestLabWireRejects(t *testing.T) {
	t.Parallel()
	lab := New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	other := New(t, "c").Host("c")
	p := netip.MustParsePrefix("10.98.1.0/24")
	for _, c := range []struct {
		name string
		a, b *Host
		dev  string
		p    netip.Prefix
		want string
	}{
		{"itself", a, a, "eth1", p, "to itself"},
		{"other lab", a, other, "eth1", p, "of this lab"},
		{"bad name", a, b, "Eth-1", p, "bad interface name"},
		{"long name", a, b, "abcdefghijklmnop", p, "bad interface name"},
		{"ipv6", a, b, "eth1", netip.MustParsePrefix("fd00::/64"), "IPv4"},
		{"too narrow", a, b, "eth1", netip.MustParsePrefix("10.98.1.0/31"), "IPv4"},
		{"bridge subnet", a, b, "eth1", netip.MustParsePrefix("10.99.0.0/16"), "overlaps"},
		{"taken", a, b, "eth0", p, "File exists"},
	} {
		r := record(t, func(r *recordTB) {
			lab.t = r // Wire fails through the lab's TB
			defer func() { lab.t = t }()
			lab.Wire(c.a, c.b, c.dev, c.p)
		})
		if !strings.Contains(r.failed, c.want) {
			t.Errorf("%s: Wire failed with %q; want it to say %q", c.name, r.failed, c.want)
		}
	}
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

// Hosts with only IPv6 link-local addresses: no IPv4 address on eth0, a
// link-local address usable at once (no duplicate address detection), and
// UDP between two such hosts over [fe80::...%eth0].
func TestLabIPv6Only(t *testing.T) {
	t.Parallel()
	lab := NewIPv6Only(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, h := range []*Host{a, b} {
		if h.Addr().IsValid() || !h.IPv6Only() {
			t.Errorf("%s: Addr = %v, IPv6Only = %v; want no IPv4 address", h.Name, h.Addr(), h.IPv6Only())
		}
		out, err := h.Run(ctx, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("%s: IPv4 addresses on eth0: %q %v", h.Name, out, err)
		}
		if ll := h.LinkLocal(t); !ll.IsLinkLocalUnicast() || ll.Zone() != "eth0" {
			t.Errorf("%s: LinkLocal = %v; want fe80::...%%eth0", h.Name, ll)
		}
	}
	open := func(h *Host, port int) *net.UDPConn {
		var c *net.UDPConn
		if err := h.Do(func() (err error) {
			c, err = net.ListenUDP("udp6", &net.UDPAddr{Port: port})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	in, out := open(b, 9999), open(a, 0)
	deliver(t, out, in, b.LinkLocal(t), "over link-local")
}

func TestParseLinkLocal(t *testing.T) {
	out := "2: eth0    inet6 fe80::1/64 scope link tentative \\       valid_lft forever\n" +
		"2: eth0    inet6 fe80::2/64 scope link \\       valid_lft forever preferred_lft forever\n"
	if a, ok := parseLinkLocal(out); !ok || a != netip.MustParseAddr("fe80::2") {
		t.Errorf("parseLinkLocal = %v, %v; want fe80::2 (fe80::1 is tentative)", a, ok)
	}
	if _, ok := parseLinkLocal(""); ok {
		t.Error("parseLinkLocal found an address in nothing")
	}
}

// DisableIPv6 leaves eth0 with its IPv4 address alone.
func TestHostDisableIPv6(t *testing.T) {
	t.Parallel()
	lab := New(t, "a")
	a := lab.Host("a")
	if err := a.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := a.Run(ctx, "ip", "-o", "addr", "show", "dev", "eth0")
	if err != nil || strings.Contains(out, "inet6") || !strings.Contains(out, a.Addr().String()) {
		t.Errorf("eth0 after DisableIPv6: %q %v; want %s and no inet6", out, err, a.Addr())
	}
}
