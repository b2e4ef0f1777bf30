package e2e

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/internal/netns"
)

// pairEvent is a line of `nearnet pair --json` output.
type pairEvent struct {
	Event       string `json:"event"`
	Code        string `json:"code"`
	Name        string `json:"name"`
	Peer        string `json:"peer"`
	Fingerprint string `json:"fingerprint"`
	Reason      string `json:"reason"`
	Addr        string `json:"addr"`
	Port        int    `json:"port"`
}

func isPairEvent(kind string) func(pairEvent) bool {
	return func(e pairEvent) bool { return e.Event == kind }
}

// pairHost is a host's identity and known-peers file.
type pairHost struct {
	h           *netns.Host
	id, known   string
	fingerprint string
}

func newPairHost(t *testing.T, h *netns.Host) *pairHost {
	dir := t.TempDir()
	p := &pairHost{h: h, id: filepath.Join(dir, "id.pem"), known: filepath.Join(dir, "known_peers")}
	p.fingerprint = identity(t, h, p.id)
	return p
}

func (p *pairHost) flags() []string { return []string{"--identity", p.id, "--known-peers", p.known} }

// knows reports the known-peers file's entries.
func (p *pairHost) knownPeers(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(p.known)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

// showCode starts `nearnet pair` in p's host and returns it with its code.
func (p *pairHost) showCode(t *testing.T, name string, args ...string) (*netns.Proc, pairEvent) {
	t.Helper()
	proc := start(t, p.h, append(append([]string{"pair", "--json", "--interface", "eth0", "--name", name}, p.flags()...), args...)...)
	return proc, waitEvent(t, proc, name+"'s code", isPairEvent("code"))
}

// typeCode starts `nearnet pair CODE` in p's host.
func (p *pairHost) typeCode(t *testing.T, code, name string, args ...string) *netns.Proc {
	t.Helper()
	return start(t, p.h, append(append([]string{"pair", code, "--json", "--interface", "eth0", "--name", name}, p.flags()...), args...)...)
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestPairing runs pairing by a short code across hosts of one lab: a and
// b pair (over TCP, found by discovery), then chat and send a file with no
// code and no key; x, a third host advertising the name a had, answers
// first and fails, pinned by nobody, while the real pairing succeeds (over
// QUIC); with multicast blocked between the hosts, a wrong code through
// --to host:port fails on both sides with the mismatch, the right one then
// pairs, and a code is dead after its attempts.
func TestPairing(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b", "x")
	a, b, x := newPairHost(t, lab.Host("a")), newPairHost(t, lab.Host("b")), newPairHost(t, lab.Host("x"))

	reset := func(t *testing.T) {
		for _, p := range []*pairHost{a, b, x} {
			if err := os.Remove(p.known); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
	}

	t.Run("tcp, then chat and send with no code", func(t *testing.T) {
		reset(t)
		shows, code := a.showCode(t, "desk1", "--transport", "tcp")
		types := b.typeCode(t, code.Code, "laptop1", "--transport", "tcp")
		if err := waitExit(t, types); err != nil {
			t.Fatalf("pair CODE: %v", err)
		}
		if err := waitExit(t, shows); err != nil {
			t.Fatalf("pair: %v", err)
		}
		if e := waitEvent(t, types, "paired", isPairEvent("paired")); e.Name != "desk1" || e.Fingerprint != a.fingerprint {
			t.Fatalf("b paired %+v, want desk1 %s", e, a.fingerprint)
		}
		if e := waitEvent(t, shows, "paired", isPairEvent("paired")); e.Name != "laptop1" || e.Fingerprint != b.fingerprint {
			t.Fatalf("a paired %+v, want laptop1 %s", e, b.fingerprint)
		}
		if got, want := a.knownPeers(t), b.fingerprint+" laptop1\n"; got != want {
			t.Fatalf("a's known peers %q, want %q", got, want)
		}
		if got, want := b.knownPeers(t), a.fingerprint+" desk1\n"; got != want {
			t.Fatalf("b's known peers %q, want %q", got, want)
		}

		// chat: no code, no key, no --trust.
		la := listen(t, a.h, "desk1", a.flags()...)
		c := chat(t, b.h, "laptop1", append(b.flags(), "--to", "desk1")...)
		send(t, c, "pinned by a code")
		if err := waitExit(t, c); err != nil {
			t.Fatalf("chat after pairing: %v", err)
		}
		waitMessages(t, la.Proc, "laptop1", []string{"pinned by a code"})
		la.Stop(context.Background())

		// send and receive.
		dir := t.TempDir()
		src := filepath.Join(t.TempDir(), "paired.bin")
		want := filetest.WriteRandom(t, src, 100<<10)
		recv := start(t, a.h, append([]string{"receive", "--json", "--interface", "eth0", "--name", "inbox1", "--yes", "--count", "1", "--dir", dir}, a.flags()...)...)
		waitEvent(t, recv, "receive's ready event", isEvent("ready"))
		snd := start(t, b.h, append([]string{"send", src, "--json", "--interface", "eth0", "--to", "inbox1"}, b.flags()...)...)
		if err := waitExit(t, snd); err != nil {
			t.Fatalf("send after pairing: %v", err)
		}
		if err := waitExit(t, recv); err != nil {
			t.Fatalf("receive after pairing: %v", err)
		}
		checkReceived(t, recv, dir, "paired.bin", want)
	})

	t.Run("quic, an impostor answering under the same name", func(t *testing.T) {
		reset(t)
		// x takes the name first, with a code of its own; a, started
		// after, is renamed by the mDNS conflict.
		imp, impCode := x.showCode(t, "desk2", "--transport", "quic")
		shows, code := a.showCode(t, "desk2", "--transport", "quic")
		if impCode.Name != "desk2" || code.Name == "desk2" {
			t.Fatalf("names after the conflict: x %q, a %q; want x to keep desk2", impCode.Name, code.Name)
		}
		// Named, desk2 is the impostor: the pairing fails, and says so.
		first := b.typeCode(t, code.Code, "laptop2", "--transport", "quic", "--to", "desk2")
		if err := waitExit(t, first); exitStatus(err) != 1 || !strings.Contains(first.Stderr(), "pairing code mismatch") {
			t.Fatalf("pairing with the impostor: %v, stderr %q; want exit 1 with the mismatch", err, first.Stderr())
		}
		if e := waitEvent(t, imp, "the impostor's pair_failed", isPairEvent("pair_failed")); !strings.Contains(e.Reason, "mismatch") {
			t.Fatalf("impostor: %+v", e)
		}
		if got := b.knownPeers(t); got != "" {
			t.Fatalf("b pinned %q after failing with the impostor", got)
		}
		// Found by discovery (both show a code): b passes over the
		// impostor, if it meets it first, and pairs with a.
		second := b.typeCode(t, code.Code, "laptop2", "--transport", "quic")
		if err := waitExit(t, second); err != nil {
			t.Fatalf("pairing by discovery: %v", err)
		}
		if err := waitExit(t, shows); err != nil {
			t.Fatalf("a's pair: %v", err)
		}
		if e := waitEvent(t, second, "paired", isPairEvent("paired")); e.Fingerprint != a.fingerprint {
			t.Fatalf("b paired %+v, want a's %s", e, a.fingerprint)
		}
		if got, want := b.knownPeers(t), a.fingerprint+" "+code.Name+"\n"; got != want {
			t.Fatalf("b's known peers %q, want only a: %q", got, want)
		}
		if got := x.knownPeers(t); got != "" {
			t.Fatalf("the impostor pinned %q", got)
		}
		imp.Stop(context.Background())
	})

	t.Run("no multicast, --to host:port, wrong code", func(t *testing.T) {
		reset(t)
		// mDNS no longer crosses the bridge: only --to can reach a peer.
		for _, h := range []string{"a", "b", "x"} {
			if out, err := exec.Command("ip", "netns", "exec", lab.BridgeNS(), "bridge", "link", "set", "dev", "v-"+h, "mcast_flood", "off").CombinedOutput(); err != nil {
				t.Fatalf("blocking multicast: %v: %s", err, out)
			}
		}
		for _, tr := range []string{"quic", "tcp"} {
			shows, code := a.showCode(t, "desk3", "--transport", tr, "--attempts", "2")
			ready := waitEvent(t, shows, "ready", isPairEvent("ready"))
			if tr == "quic" {
				// Discovery sees nothing of a now (what it would have seen
				// by then: its announcements at start-up).
				out, _, err := runCLI(t, b.h, "browse", "--json", "--interface", "eth0", "--timeout", "1s")
				if err != nil || strings.Contains(out, "desk3") {
					t.Fatalf("browse with multicast blocked: %v\n%s", err, out)
				}
			}
			to := net.JoinHostPort(a.h.Addr().String(), strconv.Itoa(ready.Port))
			wrong := []byte(code.Code)
			wrong[0] = '0' + (wrong[0]-'0'+1)%10
			bad := b.typeCode(t, string(wrong), "laptop3", "--transport", tr, "--to", to)
			if err := waitExit(t, bad); exitStatus(err) != 1 || !strings.Contains(bad.Stderr(), "pairing code mismatch") {
				t.Fatalf("%s: wrong code: %v, stderr %q", tr, err, bad.Stderr())
			}
			if e := waitEvent(t, shows, "a's pair_failed", isPairEvent("pair_failed")); !strings.Contains(e.Reason, "pairing code mismatch") {
				t.Fatalf("%s: a: %+v", tr, e)
			}
			if tr == "quic" {
				// The second attempt, with the right code, pairs.
				good := b.typeCode(t, code.Code, "laptop3", "--transport", tr, "--to", to)
				if err := waitExit(t, good); err != nil {
					t.Fatalf("right code after a wrong one: %v", err)
				}
				if err := waitExit(t, shows); err != nil {
					t.Fatalf("a's pair: %v", err)
				}
				if !strings.Contains(b.knownPeers(t), a.fingerprint) || !strings.Contains(a.knownPeers(t), b.fingerprint) {
					t.Fatalf("known peers after pairing: a %q, b %q", a.knownPeers(t), b.knownPeers(t))
				}
				reset(t)
				continue
			}
			// Out of attempts, the code is dead: a says so and exits.
			bad2 := b.typeCode(t, string(wrong), "laptop3", "--transport", tr, "--to", to)
			if err := waitExit(t, bad2); exitStatus(err) != 1 || !strings.Contains(bad2.Stderr(), "mismatch") {
				t.Fatalf("second wrong code: %v, stderr %q", err, bad2.Stderr())
			}
			if err := waitExit(t, shows); exitStatus(err) != 1 || !strings.Contains(shows.Stderr(), "used up") {
				t.Fatalf("a after its attempts: %v, stderr %q; want exit 1, used up", err, shows.Stderr())
			}
			if a.knownPeers(t) != "" || b.knownPeers(t) != "" {
				t.Fatal("a failed pairing pinned a peer")
			}
		}
	})
}
