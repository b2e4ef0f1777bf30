package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/internal/netns"
)

// TestIPv6OnlyHosts: two hosts whose eth0 has only an IPv6 link-local
// address (no IPv4 at all, as on Apple's peer-to-peer Wi-Fi). browse finds
// the listener at its link-local address with eth0 as zone, in JSON and in
// the readable [addr%zone]:port form; chat reaches it by name and by
// '[fe80::...%eth0]:port'; a file goes across by name and by address;
// datagrams flow; and all of it over --transport quic too.
func TestIPv6OnlyHosts(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.NewIPv6Only(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	key := keyFile(t, a)
	lb := listen(t, b, "b", "--key-file", key)
	bAddr := net.JoinHostPort(b.LinkLocal(t).String(), strconv.Itoa(lb.ready.Port)) // [fe80::...%eth0]:port

	t.Run("browse", func(t *testing.T) {
		p := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key)
		found := waitEvent(t, p, "found b", func(e event) bool { return e.Event == "found" && e.Name == "b" })
		var addrs []string
		if err := json.Unmarshal(found.Addrs, &addrs); err != nil || len(addrs) != 1 || addrs[0] != b.LinkLocal(t).String() {
			t.Errorf("found %s; want b's addresses to be exactly [%s] (link-local with its zone)", found, b.LinkLocal(t))
		}
		if found.Peer != lb.ready.Peer || found.Port != lb.ready.Port {
			t.Errorf("found %s; want peer %s port %d", found, lb.ready.Peer, lb.ready.Port)
		}
		text := start(t, a, "browse", "--interface", "eth0", "--key-file", key, "--timeout", "5s")
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if _, err := text.WaitLine(ctx, func(l string) bool { return strings.Contains(l, " at "+bAddr) }); err != nil {
			t.Errorf("readable browse output never shows b at %s: %v", bAddr, err)
		}
	})

	t.Run("chat by name and by zoned address", func(t *testing.T) {
		for _, to := range []string{"b", bAddr} {
			lines := []string{"over IPv6 to " + to, "second line"}
			p := chat(t, a, "chat-a", "--key-file", key, "--to", to)
			send(t, p, lines...)
			if err := waitExit(t, p); err != nil {
				t.Fatalf("chat --to %s: %v; want exit 0", to, err)
			}
			waitEvent(t, lb.Proc, "last line to "+to, func(e event) bool {
				return e.Event == "message" && e.Name == "chat-a" && e.Text == lines[1]
			})
		}
		if got := messages(lb.Proc, "chat-a"); len(got) != 4 {
			t.Errorf("b got %q from chat-a; want both chats' two lines", got)
		}
	})

	t.Run("unknown zone", func(t *testing.T) {
		to := net.JoinHostPort(b.LinkLocal(t).WithZone("nosuch0").String(), strconv.Itoa(lb.ready.Port))
		p := chat(t, a, "chat-a", "--key-file", key, "--wait", "1s", "--to", to)
		expectRejected(t, p, regexp.MustCompile(`no network interface named "nosuch0"`))
	})

	t.Run("datagrams", func(t *testing.T) {
		p := chat(t, a, "dg-a", "--datagram", "--key-file", key, "--to", bAddr)
		waitEvent(t, p, "dg-a connected to b", func(e event) bool { return e.Event == "connected" && e.Peer == lb.ready.Peer })
		sendDatagram(t, p, lb.Proc, "dg-a", "a datagram over link-local IPv6")
		if err := p.CloseStdin(); err != nil {
			t.Fatal(err)
		}
		if err := waitExit(t, p); err != nil {
			t.Fatalf("chat --datagram: %v; want exit 0", err)
		}
	})

	t.Run("file", func(t *testing.T) {
		src, dst := t.TempDir(), t.TempDir()
		want := filetest.WriteRandom(t, filepath.Join(src, "big.bin"), 64<<20+5)
		small := filetest.WriteRandom(t, filepath.Join(src, "small.txt"), 999)
		r := start(t, b, "receive", "--json", "--interface", "eth0", "--name", "rb", "--key-file", key,
			"--yes", "--dir", dst, "--count", "2")
		ready := waitEvent(t, r, "receive's ready event", isEvent("ready"))
		out, stderr, err := runCLI(t, a, "send", "--json", "--interface", "eth0", "--key-file", key, "--to", "rb", filepath.Join(src, "big.bin"))
		if err != nil {
			t.Fatalf("send big.bin to rb: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
		}
		waitEvent(t, r, "received big.bin", func(e event) bool { return e.Event == "received" && e.Name == "big.bin" })
		checkReceived(t, r, dst, "big.bin", want)
		target := net.JoinHostPort(b.LinkLocal(t).String(), strconv.Itoa(ready.Port))
		out, stderr, err = runCLI(t, a, "send", "--json", "--key-file", key, "--to", target, filepath.Join(src, "small.txt"))
		if err != nil {
			t.Fatalf("send small.txt to %s: %v\nstdout:\n%s\nstderr:\n%s", target, err, out, stderr)
		}
		waitEvent(t, r, "received small.txt", func(e event) bool { return e.Event == "received" && e.Name == "small.txt" })
		checkReceived(t, r, dst, "small.txt", small)
		if err := waitExit(t, r); err != nil {
			t.Fatalf("receive --count 2: %v; want exit 0", err)
		}
	})

	t.Run("quic", func(t *testing.T) {
		lq := listen(t, b, "bq", "--key-file", key, "--transport", "quic")
		qAddr := net.JoinHostPort(b.LinkLocal(t).String(), strconv.Itoa(lq.ready.Port))
		for _, to := range []string{"bq", qAddr} {
			p := chat(t, a, "quic-a", "--key-file", key, "--transport", "quic", "--to", to)
			send(t, p, "quic to "+to)
			if err := waitExit(t, p); err != nil {
				t.Fatalf("chat --transport quic --to %s: %v; want exit 0", to, err)
			}
			waitEvent(t, lq.Proc, "quic line to "+to, func(e event) bool {
				return e.Event == "message" && e.Name == "quic-a" && e.Text == "quic to "+to
			})
		}
		p := chat(t, a, "quic-dg", "--datagram", "--key-file", key, "--transport", "quic", "--to", qAddr)
		waitEvent(t, p, "quic-dg connected", func(e event) bool { return e.Event == "connected" && e.Peer == lq.ready.Peer })
		sendDatagram(t, p, lq.Proc, "quic-dg", "a QUIC datagram over link-local IPv6")
		p.CloseStdin()
		if err := waitExit(t, p); err != nil {
			t.Fatalf("chat --transport quic --datagram: %v; want exit 0", err)
		}
	})
}

// sendDatagram writes line to p, a `chat --datagram`, until the listener l
// prints it as a datagram from name (best effort: a bounded number of
// tries).
func sendDatagram(t testing.TB, p, l *netns.Proc, name, line string) {
	t.Helper()
	for try := 0; try < 10; try++ {
		if err := p.WriteLine(line); err != nil {
			t.Fatalf("write to %s: %v", p, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := netns.WaitJSON(ctx, l, func(e event) bool {
			return e.Event == "datagram" && e.Name == name && e.Text == line
		})
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("datagram %q from %s never arrived", line, name)
}

// TestAvahiInteropIPv6Only: on a link with only IPv6 link-local addresses,
// Avahi (use-ipv6=yes) in c resolves a nearnet listener in a at a's
// link-local address, and nearnet's browse in a finds Avahi's service at
// c's, with eth0 as zone.
func TestAvahiInteropIPv6Only(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.NewIPv6Only(t, "a", "c")
	a, c := lab.Host("a"), lab.Host("c")
	c.StartAvahi(t)
	key := keyFile(t, a)

	l := listen(t, a, "visible6", "--key-file", key)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.AvahiFind(ctx, "_nearnet._tcp", func(s netns.AvahiService) bool { return s.Name == "visible6" })
	if err != nil {
		t.Fatal(err)
	}
	if want := a.LinkLocal(t).WithZone(""); s.Protocol != "IPv6" || s.Address != want.String() || s.Port != l.ready.Port {
		t.Errorf("Avahi resolved %+v; want %s port %d over IPv6", s, want, l.ready.Port)
	}
	if id, _ := s.TXTValue("id"); id != l.ready.Peer {
		t.Errorf("Avahi sees TXT %q; want id=%s", s.TXT, l.ready.Peer)
	}

	c.AvahiPublish(t, "from avahi6", "_nearnet._tcp", 7777, "foo=bar")
	browse := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key)
	found := waitEvent(t, browse, "found the Avahi service", func(e event) bool {
		return e.Event == "found" && e.Name == "from avahi6"
	})
	var addrs []string
	if err := json.Unmarshal(found.Addrs, &addrs); err != nil || len(addrs) != 1 || addrs[0] != c.LinkLocal(t).String() || found.Port != 7777 {
		t.Errorf("found %s; want port 7777 at exactly [%s]", found, c.LinkLocal(t))
	}
}

// TestDualStackFoundOnce: on a link where every host has an IPv4 address
// and an IPv6 link-local one, browse reports a peer once, with both
// addresses, and chat reaches it at either.
func TestDualStackFoundOnce(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	key := keyFile(t, a)
	lb := listen(t, b, "b", "--key-file", key)
	p := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key)
	found := waitEvent(t, p, "found b with both addresses", func(e event) bool {
		return (e.Event == "found" || e.Event == "updated") && e.Name == "b" && addrsHave(e.Addrs, b.Addr()) && addrsHave(e.Addrs, b.LinkLocal(t))
	})
	if found.Peer != lb.ready.Peer {
		t.Errorf("found %s; want peer %s", found, lb.ready.Peer)
	}
	for _, ip := range []string{b.Addr().String(), b.LinkLocal(t).String()} {
		to := net.JoinHostPort(ip, strconv.Itoa(lb.ready.Port))
		c := chat(t, a, "chat-a", "--key-file", key, "--to", to)
		send(t, c, "to "+to)
		if err := waitExit(t, c); err != nil {
			t.Fatalf("chat --to %s: %v; want exit 0", to, err)
		}
		waitEvent(t, lb.Proc, "line to "+to, func(e event) bool { return e.Event == "message" && e.Text == "to "+to })
	}
	// However many families and packets it was heard over: one found.
	if n := len(events(p, func(e event) bool { return e.Event == "found" && e.Name == "b" })); n != 1 {
		t.Errorf("browse printed %d found events for b; want 1", n)
	}
}

// TestThreeIPv6OnlyHosts: three hosts with only link-local addresses; a
// chat on c without --to finds a and b and connects to both (star mode),
// and a line reaches each.
func TestThreeIPv6OnlyHosts(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.NewIPv6Only(t, "a", "b", "c")
	a, b, c := lab.Host("a"), lab.Host("b"), lab.Host("c")
	key := keyFile(t, a)
	la := listen(t, a, "a", "--key-file", key)
	lb := listen(t, b, "b", "--key-file", key)
	p := chat(t, c, "chat-c", "--key-file", key)
	for _, l := range []*listener{la, lb} {
		waitEvent(t, p, "connected to "+l.ready.Name, func(e event) bool {
			return e.Event == "connected" && e.Peer == l.ready.Peer
		})
	}
	send(t, p, "hello over link-local")
	if err := waitExit(t, p); err != nil {
		t.Fatalf("chat from c: %v; want exit 0", err)
	}
	for _, l := range []*listener{la, lb} {
		waitMessages(t, l.Proc, "chat-c", []string{"hello over link-local"})
	}
}

// TestIPv6OnlyWithULA: IPv6-only hosts with a unique local address beside
// the link-local one: browse reports both (only the link-local one with a
// zone), and chat reaches the listener at the ULA.
func TestIPv6OnlyWithULA(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.NewIPv6Only(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	ulaA, ulaB := netip.MustParsePrefix("fd00:99::1/64"), netip.MustParsePrefix("fd00:99::2/64")
	for h, p := range map[*netns.Host]netip.Prefix{a: ulaA, b: ulaB} {
		if err := h.AddAddr(p); err != nil {
			t.Fatal(err)
		}
	}
	key := keyFile(t, a)
	lb := listen(t, b, "b", "--key-file", key)
	p := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key)
	found := waitEvent(t, p, "found b at both addresses", func(e event) bool {
		return (e.Event == "found" || e.Event == "updated") && e.Name == "b" && addrsHave(e.Addrs, ulaB.Addr())
	})
	var addrs []string
	if err := json.Unmarshal(found.Addrs, &addrs); err != nil || !slices.Equal(addrs, []string{ulaB.Addr().String(), b.LinkLocal(t).String()}) {
		t.Errorf("found %s; want addresses [%s %s]", found, ulaB.Addr(), b.LinkLocal(t))
	}
	to := net.JoinHostPort(ulaB.Addr().String(), strconv.Itoa(lb.ready.Port))
	c := chat(t, a, "chat-a", "--key-file", key, "--to", to)
	send(t, c, "to the ULA")
	if err := waitExit(t, c); err != nil {
		t.Fatalf("chat --to %s: %v; want exit 0", to, err)
	}
	waitMessages(t, lb.Proc, "chat-a", []string{"to the ULA"})
}
