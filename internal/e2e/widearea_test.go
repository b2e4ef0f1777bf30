package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/unicastdns"
	"github.com/nearnet/nearnet/internal/unicastdns/dnstest"
)

// wideEvent is a browse event with the domain it was seen in.
type wideEvent struct {
	Event  string          `json:"event"`
	Name   string          `json:"name"`
	Peer   string          `json:"peer"`
	Port   int             `json:"port"`
	Addrs  json.RawMessage `json:"addrs"`
	Domain string          `json:"domain"`
}

// TestWideAreaDiscovery: alice and bob live on two subnets joined by a
// router (gw), with no multicast between them, and find each other only
// through BIND9 on gw, authoritative for nearnet.test with a TSIG key
// allowing updates: each registers (listen --domain --dns-server --dns-key),
// browses the other, and they chat by name. A node that closes is lost at
// once (its records removed); one that is killed is lost when its lease
// ends (3 refreshes) and its records are swept; a wrong key fails listen at
// once with a clear error.
func TestWideAreaDiscovery(t *testing.T) {
	t.Parallel()
	cli(t)
	netns.RequireCommands(t, "named")
	lab := netns.New(t, "gw", "alice", "bob")
	gw, alice, bob := lab.Host("gw"), lab.Host("alice"), lab.Host("bob")
	lab.Wire(gw, alice, "ha", netip.MustParsePrefix("10.98.1.0/24")) // gw 10.98.1.1, alice 10.98.1.2
	lab.Wire(gw, bob, "hb", netip.MustParsePrefix("10.98.2.0/24"))   // gw 10.98.2.1, bob 10.98.2.2
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, c := range []struct {
		h   *netns.Host
		cmd []string
	}{
		// alice and bob leave the bridge: their only link is to the router.
		{alice, []string{"ip", "addr", "flush", "dev", "eth0"}},
		{alice, []string{"ip", "link", "set", "eth0", "down"}},
		{alice, []string{"ip", "route", "add", "default", "via", "10.98.1.1"}},
		{bob, []string{"ip", "addr", "flush", "dev", "eth0"}},
		{bob, []string{"ip", "link", "set", "eth0", "down"}},
		{bob, []string{"ip", "route", "add", "default", "via", "10.98.2.1"}},
		{gw, []string{"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"}},
	} {
		if _, err := c.h.Run(ctx, c.cmd[0], c.cmd[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := dnstest.Write(dnstest.Options{Dir: t.TempDir(), Zone: "nearnet.test", Listen: netip.MustParseAddrPort("10.98.1.1:53")})
	if err != nil {
		t.Fatal(err)
	}
	named := gw.Start(t, "named", srv.Args()...)
	if err := bob.Do(func() error { return srv.Wait(ctx) }); err != nil {
		t.Fatalf("named on gw, from bob: %v", err)
	}
	key := keyFile(t, alice)
	wide := []string{"--domain", "nearnet.test", "--dns-server", "10.98.1.1:53", "--dns-refresh", "1s"}
	reg := append([]string{"--dns-key", srv.KeyFile}, wide...)

	lb := start(t, bob, append([]string{"listen", "--json", "--interface", "hb", "--name", "bob", "--key-file", key}, reg...)...)
	bobReady := waitEvent(t, lb, "bob's ready event", isEvent("ready"))
	la := start(t, alice, append([]string{"listen", "--json", "--interface", "ha", "--name", "alice", "--key-file", key}, reg...)...)
	aliceReady := waitEvent(t, la, "alice's ready event", isEvent("ready"))

	browseA := start(t, alice, append([]string{"browse", "--json", "--interface", "ha"}, wide...)...)
	browseB := start(t, bob, append([]string{"browse", "--json", "--interface", "hb"}, wide...)...)

	t.Run("each browses the other", func(t *testing.T) {
		for _, c := range []struct {
			p     *netns.Proc
			ready event
			addr  string
		}{{browseA, bobReady, "10.98.2.2"}, {browseB, aliceReady, "10.98.1.2"}} {
			found := waitEvent(t, c.p, "found "+c.ready.Name, func(e wideEvent) bool {
				return e.Event == "found" && e.Name == c.ready.Name
			})
			if found.Peer != c.ready.Peer || found.Port != c.ready.Port || found.Domain != "nearnet.test." {
				t.Errorf("found %+v; want peer %s port %d in nearnet.test.", found, c.ready.Peer, c.ready.Port)
			}
			if !addrsHave(found.Addrs, netip.MustParseAddr(c.addr)) {
				t.Errorf("found %+v; want %s among the addresses", found, c.addr)
			}
		}
	})

	t.Run("chat by name both ways", func(t *testing.T) {
		p := start(t, alice, append([]string{"chat", "--json", "--interface", "ha", "--name", "chat-a", "--key-file", key, "--to", "bob"}, wide...)...)
		lines := []string{"hello bob, through the router", "second ✓"}
		send(t, p, lines...)
		if err := waitExit(t, p); err != nil {
			t.Fatalf("chat from alice to bob: %v; stderr %s", err, p.Stderr())
		}
		waitMessages(t, lb, "chat-a", lines)
		q := start(t, bob, append([]string{"chat", "--json", "--interface", "hb", "--name", "chat-b", "--key-file", key, "--to", "alice"}, wide...)...)
		send(t, q, "hello alice")
		if err := waitExit(t, q); err != nil {
			t.Fatalf("chat from bob to alice: %v; stderr %s", err, q.Stderr())
		}
		waitMessages(t, la, "chat-b", []string{"hello alice"})
	})

	// dnsClient queries the server from alice's namespace.
	query := func(name string, qtype uint16) []dns.RR {
		t.Helper()
		var rrs []dns.RR
		err := alice.Do(func() error {
			c, err := unicastdns.New(unicastdns.Config{Server: "10.98.1.1:53"})
			if err != nil {
				return err
			}
			rrs, err = c.Query(ctx, name, qtype)
			return err
		})
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return rrs
	}
	hostOf := func(inst string) string {
		for _, rr := range query(inst+"._nearnet._tcp.nearnet.test", dns.TypeSRV) {
			if srv, ok := rr.(*dns.SRV); ok {
				return srv.Target
			}
		}
		return ""
	}

	t.Run("send a file by name", func(t *testing.T) {
		src, dst := t.TempDir(), t.TempDir()
		sum := filetest.WriteRandom(t, filepath.Join(src, "far.bin"), 256<<10)
		r := start(t, bob, append([]string{"receive", "--json", "--interface", "hb", "--name", "bob-rx", "--key-file", key,
			"--yes", "--dir", dst, "--count", "1"}, reg...)...)
		waitEvent(t, r, "receive's ready event", isEvent("ready"))
		out, stderr, err := runCLI(t, alice, append([]string{"send", "--json", "--interface", "ha", "--key-file", key, "--to", "bob-rx",
			filepath.Join(src, "far.bin")}, wide...)...)
		if err != nil {
			t.Fatalf("send far.bin to bob-rx: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
		}
		waitEvent(t, r, "received far.bin", func(e event) bool { return e.Event == "received" && e.Name == "far.bin" })
		checkReceived(t, r, dst, "far.bin", sum)
		if err := waitExit(t, r); err != nil {
			t.Fatalf("receive --count 1: %v", err)
		}
	})

	t.Run("records are refreshed", func(t *testing.T) {
		host := hostOf("alice")
		if host == "" {
			t.Fatal("no SRV record for alice")
		}
		lease := func() string {
			for _, rr := range query(host, dns.TypeTXT) {
				return strings.Join(rr.(*dns.TXT).Txt, "")
			}
			return ""
		}
		first := lease()
		if !strings.HasPrefix(first, "nearnet-lease=") {
			t.Fatalf("lease record %q", first)
		}
		deadline := time.Now().Add(waitTimeout)
		for lease() == first {
			if time.Now().After(deadline) {
				t.Fatalf("lease %q not renewed in %v of 1 s refreshes", first, waitTimeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("a new address is published", func(t *testing.T) {
		if _, err := alice.Run(ctx, "ip", "addr", "add", "10.98.1.3/24", "dev", "ha"); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, browseB, "alice updated with 10.98.1.3", func(e wideEvent) bool {
			return e.Event == "updated" && e.Name == "alice" && e.Domain == "nearnet.test." && addrsHave(e.Addrs, netip.MustParseAddr("10.98.1.3"))
		})
	})

	t.Run("a closed node is lost and its records removed", func(t *testing.T) {
		host := hostOf("bob")
		if err := lb.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if err := waitExit(t, lb); err != nil {
			t.Fatalf("bob's listen: %v", err)
		}
		waitEvent(t, browseA, "lost bob", func(e wideEvent) bool { return e.Event == "lost" && e.Name == "bob" })
		if rrs := query(host, dns.TypeA); len(rrs) != 0 || hostOf("bob") != "" {
			t.Fatalf("bob's records are still there: %v", rrs)
		}
	})

	t.Run("a killed node is lost when its lease ends, then swept", func(t *testing.T) {
		p := start(t, bob, append([]string{"listen", "--json", "--interface", "hb", "--name", "crasher", "--key-file", key}, reg...)...)
		waitEvent(t, p, "crasher's ready event", isEvent("ready"))
		waitEvent(t, browseA, "found crasher", func(e wideEvent) bool { return e.Event == "found" && e.Name == "crasher" })
		host := hostOf("crasher")
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, browseA, "lost crasher", func(e wideEvent) bool { return e.Event == "lost" && e.Name == "crasher" })
		// alice, a live registrant of the type, sweeps its records away.
		deadline := time.Now().Add(waitTimeout)
		for hostOf("crasher") != "" || len(query(host, dns.TypeA)) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("crasher's records are still in the zone after %v", waitTimeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("a wrong TSIG key fails listen at once", func(t *testing.T) {
		wrong := append([]string{"--tsig", "nearnet-update:hmac-sha256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, wide...)
		p := start(t, bob, append([]string{"listen", "--json", "--interface", "hb", "--name", "wrongkey", "--key-file", key}, wrong...)...)
		err := waitExit(t, p)
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.Fatalf("listen with a wrong key: exit %v; want a failure", err)
		}
		if !regexp.MustCompile(`TSIG.*BADSIG|rejected the TSIG key`).MatchString(p.Stderr()) {
			t.Fatalf("listen with a wrong key: stderr %q does not say the key was rejected", p.Stderr())
		}
		if strings.Contains(p.Stderr(), "MDEyMzQ1Njc4") {
			t.Fatalf("stderr shows the secret: %s", p.Stderr())
		}
		// Permanent: the server saw the wrong key once, nothing was retried.
		n := 0
		for _, l := range named.StderrLines() {
			if strings.Contains(l, "BADSIG") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("named logged %d updates with a bad signature, want exactly 1 (no retry)", n)
		}
	})
}
