package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/internal/netns"
)

// TestTunnelThroughTUN: nodes on userspace stacks behind real TUN devices
// of a gateway host gw talk to a node on host b's ordinary sockets through
// the kernel's routing (b routes 10.9.0.0/16 via gw, which forwards into
// the TUN devices), both ways, with chat, listen, send and receive, the
// listener inside advertising with mDNS over its stack (--tun-multicast)
// and a browse inside nn3 querying over its own; and gw's own sockets send
// nothing meanwhile: an nftables counter on gw's locally generated TCP and
// UDP stays at zero (and counts a control run of browse, which sends mDNS
// on gw's eth0), while another counts the in-tunnel mDNS arriving from nn3.
func TestTunnelThroughTUN(t *testing.T) {
	t.Parallel()
	cli(t)
	netns.RequireCommands(t, "nft")
	_, err := os.Stat("/dev/net/tun")
	netns.Require(t, "a TUN device: /dev/net/tun", err == nil)
	lab := netns.New(t, "gw", "b")
	gw, b := lab.Host("gw"), lab.Host("b")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	run := func(h *netns.Host, args ...string) {
		t.Helper()
		if _, err := h.Run(ctx, args[0], args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	for i, dev := range []string{"nn0", "nn1", "nn2", "nn3"} {
		run(gw, "ip", "tuntap", "add", "dev", dev, "mode", "tun")
		run(gw, "ip", "addr", "add", "10.9."+strconv.Itoa(i)+".1/24", "dev", dev)
		run(gw, "ip", "link", "set", dev, "up")
	}
	run(gw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	run(b, "ip", "route", "add", "10.9.0.0/16", "via", gw.Addr().String())
	nft := gw.Command(ctx, "nft", "-f", "-")
	nft.Stdin = strings.NewReader("table inet nnwatch {\n counter own {}\n chain c_out {\n  type filter hook output priority 0; policy accept;\n  meta l4proto { tcp, udp } counter name own\n }\n counter tunmdns {}\n chain c_pre {\n  type filter hook prerouting priority 0; policy accept;\n  iifname \"nn3\" udp dport 5353 counter name tunmdns\n }\n}\n")
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft in gw: %v\n%s", err, out)
	}
	key := keyFile(t, b)

	// Into the tunnel: b dials the node behind nn0.
	in := start(t, gw, "listen", "--json", "--name", "inside", "--tun", "nn0", "--tun-addr", "10.9.0.2/24", "--tun-multicast", "--key-file", key)
	ready := waitEvent(t, in, "inside's ready event", isEvent("ready"))
	lines := []string{"into the tunnel", "second line"}
	c := chat(t, b, "from-b", "--key-file", key, "--to", net.JoinHostPort("10.9.0.2", strconv.Itoa(ready.Port)))
	send(t, c, lines...)
	if err := waitExit(t, c); err != nil {
		t.Fatalf("chat from b into the tunnel: %v\n%s", err, c.Stderr())
	}
	waitMessages(t, in, "from-b", lines)

	// Out of the tunnel: the node behind nn1 dials b's listener.
	lb := listen(t, b, "b", "--key-file", key)
	out := start(t, gw, "chat", "--json", "--name", "from-tunnel", "--tun", "nn1", "--tun-addr", "10.9.1.2/24", "--key-file", key,
		"--to", net.JoinHostPort(b.Addr().String(), strconv.Itoa(lb.ready.Port)))
	send(t, out, "out of the tunnel")
	if err := waitExit(t, out); err != nil {
		t.Fatalf("chat from the tunnel to b: %v\n%s", err, out.Stderr())
	}
	waitMessages(t, lb.Proc, "from-tunnel", []string{"out of the tunnel"})

	// A file into the tunnel: receive behind nn2, send from b.
	dst := t.TempDir()
	src := filepath.Join(t.TempDir(), "big.bin")
	sum := filetest.WriteRandom(t, src, 3<<20+5)
	r := start(t, gw, "receive", "--json", "--name", "inside-files", "--tun", "nn2", "--tun-addr", "10.9.2.2/24", "--key-file", key,
		"--yes", "--dir", dst, "--count", "1")
	rready := waitEvent(t, r, "receive's ready event", isEvent("ready"))
	if o, stderr, err := runCLI(t, b, "send", "--json", "--key-file", key, "--to", net.JoinHostPort("10.9.2.2", strconv.Itoa(rready.Port)), src); err != nil {
		t.Fatalf("send into the tunnel: %v\nstdout:\n%s\nstderr:\n%s", err, o, stderr)
	}
	if err := waitExit(t, r); err != nil {
		t.Fatalf("receive --count 1 in the tunnel: %v\n%s", err, r.Stderr())
	}
	checkReceived(t, r, dst, "big.bin", sum)

	// Browsing inside nn3: its queries go into the tunnel, none out of gw.
	if _, stderr, err := runCLI(t, gw, "browse", "--tun", "nn3", "--tun-addr", "10.9.3.2/24", "--tun-multicast", "--insecure", "--timeout", "1s"); err != nil {
		t.Fatalf("browse inside nn3: %v\n%s", err, stderr)
	}
	if n := counted(t, gw, "tunmdns"); n == 0 {
		t.Fatal("no mDNS came out of nn3: browse did not query inside the tunnel")
	}
	if n := ownPackets(t, gw); n != 0 {
		t.Fatalf("gw's own sockets sent %d TCP/UDP packets while only in-tunnel nodes ran there", n)
	}
	// The control: a node on gw's host sockets is counted.
	if _, stderr, err := runCLI(t, gw, "browse", "--interface", "eth0", "--insecure", "--timeout", "1s"); err != nil {
		t.Fatalf("browse in gw: %v\n%s", err, stderr)
	}
	if n := ownPackets(t, gw); n == 0 {
		t.Fatal("the counter missed browse's mDNS on gw's eth0: it proves nothing")
	}
}

var packetsRE = regexp.MustCompile(`packets (\d+)`)

// ownPackets reads the counter of TCP and UDP packets h's sockets sent.
func ownPackets(t *testing.T, h *netns.Host) int {
	t.Helper()
	return counted(t, h, "own")
}

// counted reads the packets of h's nftables counter name.
func counted(t *testing.T, h *netns.Host, name string) int {
	t.Helper()
	out, err := h.Run(context.Background(), "nft", "list", "counter", "inet", "nnwatch", name)
	m := packetsRE.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("nft list counter in %s: %v\n%s", h.Name, err, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
