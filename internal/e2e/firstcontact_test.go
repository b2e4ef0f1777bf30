//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/transport/ice/icetest"
	"github.com/nearnet/nearnet/internal/unicastdns"
	"github.com/nearnet/nearnet/internal/unicastdns/dnstest"
	"github.com/nearnet/nearnet/internal/wire"
)

// connEvent is a connected event with the path it runs on.
type connEvent struct {
	Event string `json:"event"`
	Name  string `json:"name"`
	Via   string `json:"via"`
	Path  string `json:"path"`
}

// TestFirstContact: alice (home A) and bob (home B), each behind its own
// NAT, never share a LAN. They register in nearnet.test on BIND9 (TSIG)
// with a mailbox on coturn (their records carry "mbx"), find each other
// by name, chat both ways and send a 64 MiB file: over a direct path
// while both NATs keep ports (coturn's relay ports carry far less than the
// file), and relayed through coturn when alice's NAT randomises ports
// (they carry the whole file). A garbage knock on bob's mailbox is
// ignored.
func TestFirstContact(t *testing.T) {
	t.Parallel()
	cli(t)
	netns.RequireCommands(t, "named", "turnserver")
	in := netns.NewInternet(t)
	alice, bob := in.A, in.C
	turn := in.StartTURN(t, "nearnet", "first-contact-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dnsAddr := netip.AddrPortFrom(netns.PublicAddr, 53)
	srv, err := dnstest.Write(dnstest.Options{Dir: t.TempDir(), Zone: "nearnet.test", Listen: dnsAddr})
	if err != nil {
		t.Fatal(err)
	}
	in.Srv.Start(t, "named", srv.Args()...)
	if err := alice.Do(func() error { return srv.Wait(ctx) }); err != nil {
		t.Fatalf("named on srv, from alice: %v", err)
	}
	creds := filepath.Join(t.TempDir(), "turn-credentials")
	if err := os.WriteFile(creds, []byte(turn.User+":"+turn.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := keyFile(t, alice)
	wide := []string{"--domain", "nearnet.test", "--dns-server", dnsAddr.String(), "--dns-refresh", "2s",
		"--turn", fmt.Sprintf("turn:%s:3478", netns.PublicAddr), "--turn-credentials", creds, "--key-file", key}
	reg := append([]string{"--dns-key", srv.KeyFile}, wide...)
	ifA, ifB := []string{"--interface", "eth0"}, []string{"--interface", "lan"}
	args := func(cmd string, iface []string, rest ...string) []string {
		return append(append(append([]string{cmd, "--json"}, iface...), rest...), reg...)
	}
	la := start(t, alice, args("listen", ifA, "--name", "alice")...)
	waitEvent(t, la, "alice's ready event", isEvent("ready"))
	lb := start(t, bob, args("listen", ifB, "--name", "bob")...)
	waitEvent(t, lb, "bob's ready event", isEvent("ready"))

	t.Run("garbage and forged knocks", func(t *testing.T) {
		mbx := mailboxOf(t, ctx, alice, dnsAddr.String(), "bob")
		pn, err := icetest.NewNet(alice)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ice.OpenMailbox(ctx, ice.Config{Net: pn, Servers: []ice.Server{
			{URL: fmt.Sprintf("turn:%s:3478", netns.PublicAddr), Username: turn.User, Password: turn.Password}}})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		// Garbage after the magic: ignored, no answer.
		for _, b := range []string{"{garbage", "", `{"gen":1,"ufrag":"abcd","pwd":"0123456789012345678901","cands":["candidate:1 1 udp 1 10.0.0.1 1 typ host"]}`} {
			if err := m.Knock(mbx, []byte(b)); err != nil {
				t.Fatal(err)
			}
		}
		// A forged offer (well formed, nobody behind its candidate): bob
		// answers, its checks fail, and it costs him no session.
		forged, err := wire.AppendICE(nil, &wire.ICE{Gen: 42, Ufrag: "forg", Pwd: "0123456789012345678901",
			Candidates: []string{"candidate:1 1 udp 16777215 10.200.0.100 49999 typ relay raddr 0.0.0.0 rport 0"}})
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
		defer wcancel()
		tick := time.NewTicker(500 * time.Millisecond) // as a dialer repeats its offer
		defer tick.Stop()
	wait:
		for {
			if err := m.Knock(mbx, forged[1:]); err != nil {
				t.Fatal(err)
			}
			select {
			case k := <-m.Knocks():
				var ans wire.ICE
				if err := json.Unmarshal(k.Token, &ans); err != nil || !ans.Answer || ans.Gen != 42 {
					t.Fatalf("bob's answer to the forged offer: %q (%v); want an answer with gen 42 (and none to the garbage)", k.Token, err)
				}
				break wait
			case <-tick.C:
			case <-wctx.Done():
				t.Fatal("no answer to a well-formed offer")
			}
		}
		p := start(t, alice, append(append(append([]string{"chat", "--json"}, ifA...), "--name", "chat-after-garbage", "--to", "bob", "--wait", "30s"), wide...)...)
		send(t, p, "still here")
		if err := waitExit(t, p); err != nil {
			t.Fatalf("chat after garbage and forged knocks: %v; stderr %s", err, p.Stderr())
		}
		waitMessages(t, lb, "chat-after-garbage", []string{"still here"})
	})

	for _, c := range []struct {
		mode string
		nat  netns.NAT
	}{{"direct", netns.NATKeepPorts}, {"relayed", netns.NATRandom}} {
		t.Run(c.mode, func(t *testing.T) {
			in.SetNAT(t, in.RA, c.nat)
			defer in.SetNAT(t, in.RA, netns.NATKeepPorts)

			// Chat both ways, each side dialing the other by name.
			for _, d := range []struct {
				from, to   *netns.Host
				iface      []string
				name, peer string
				l          *netns.Proc
			}{{alice, bob, ifA, "chat-a-" + c.mode, "bob", lb}, {bob, alice, ifB, "chat-b-" + c.mode, "alice", la}} {
				p := start(t, d.from, append(append(append([]string{"chat", "--json"}, d.iface...), "--name", d.name, "--to", d.peer, "--wait", "30s"), wide...)...)
				conn := waitEvent(t, p, d.name+"'s connected event", func(e connEvent) bool { return e.Event == "connected" })
				if conn.Path != c.mode {
					t.Errorf("%s connected to %s over a %q path; want %q", d.name, d.peer, conn.Path, c.mode)
				}
				lines := []string{"hello " + d.peer + ", from beyond your LAN", "second ✓"}
				send(t, p, lines...)
				if err := waitExit(t, p); err != nil {
					t.Fatalf("chat from %s to %s: %v; stderr %s", d.name, d.peer, err, p.Stderr())
				}
				waitMessages(t, d.l, d.name, lines)
			}

			// A 64 MiB file from alice to bob's receive, by name.
			src, dst := t.TempDir(), t.TempDir()
			const size = 64 << 20
			sum := filetest.WriteRandom(t, filepath.Join(src, "big.bin"), size)
			rx := "bob-rx-" + c.mode
			r := start(t, bob, args("receive", ifB, "--name", rx, "--yes", "--dir", dst, "--count", "1")...)
			waitEvent(t, r, "receive's ready event", isEvent("ready"))
			before, err := turn.RelayedBytes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			s := start(t, alice, append(append(append([]string{"send", "--json"}, ifA...), "--to", rx, "--wait", "30s", filepath.Join(src, "big.bin")), wide...)...)
			if err := waitLong(s); err != nil {
				t.Fatalf("send big.bin to %s: %v; stderr %s", rx, err, s.Stderr())
			}
			waitEvent(t, r, "received big.bin", func(e event) bool { return e.Event == "received" && e.Name == "big.bin" })
			checkReceived(t, r, dst, "big.bin", sum)
			if err := waitExit(t, r); err != nil {
				t.Fatalf("receive --count 1: %v", err)
			}
			after, err := turn.RelayedBytes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			relayed := after - before
			t.Logf("%s: send of 64 MiB (connect, transfer, verify) took %v; coturn's relay ports carried %d bytes meanwhile",
				c.mode, time.Since(began).Round(time.Millisecond), relayed)
			switch {
			case c.mode == "direct" && relayed > size/64:
				t.Errorf("direct: coturn relayed %d bytes during a %d-byte transfer; want no application data (< %d)", relayed, size, size/64)
			case c.mode == "relayed" && relayed < size:
				t.Errorf("relayed: coturn relayed %d bytes during a %d-byte transfer; want the file through it", relayed, size)
			}
		})
	}

}

// mailboxOf returns the mailbox ("mbx") in the wide-area record of the
// instance name, queried from host h.
func mailboxOf(t *testing.T, ctx context.Context, h *netns.Host, server, name string) string {
	t.Helper()
	var mbx string
	err := h.Do(func() error {
		c, err := unicastdns.New(unicastdns.Config{Server: server})
		if err != nil {
			return err
		}
		rrs, err := c.Query(ctx, name+"._nearnet._tcp.nearnet.test", dns.TypeTXT)
		if err != nil {
			return err
		}
		for _, rr := range rrs {
			for _, s := range rr.(*dns.TXT).Txt {
				if v, ok := strings.CutPrefix(s, "mbx="); ok {
					mbx = v
				}
			}
		}
		return nil
	})
	if err != nil || mbx == "" {
		t.Fatalf("no mbx in %s's TXT record: %v", name, err)
	}
	return mbx
}

// waitLong waits for p to exit, for a transfer that may take longer than
// waitTimeout with a -race build on a busy machine: a bound for a hang.
func waitLong(p *netns.Proc) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := p.Wait(ctx)
	if ctx.Err() != nil {
		return errors.Join(err, ctx.Err())
	}
	return err
}
