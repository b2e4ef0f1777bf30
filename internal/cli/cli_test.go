package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/discovery"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}\n$`)
	a, _, err := run(t, nil, "keygen")
	if err != nil || !hex64.MatchString(a.String()) {
		t.Fatalf("keygen = %q, %v; want 64 hex digits and a newline", a, err)
	}
	b, _, _ := run(t, nil, "keygen")
	if a.String() == b.String() {
		t.Fatalf("two keygens printed the same key %q", a)
	}
	j, _, err := run(t, nil, "keygen", "--json")
	if err != nil {
		t.Fatal(err)
	}
	evs := j.events(t)
	if len(evs) != 1 || evs[0]["event"] != "key" || !hex64.MatchString(evs[0]["key"].(string)+"\n") {
		t.Fatalf("keygen --json = %q; want one key event", j)
	}
}

func TestID(t *testing.T) {
	t.Parallel()
	fp := regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)
	path := filepath.Join(t.TempDir(), "sub", "id.pem")
	first, _, err := run(t, nil, "id", "--identity", path)
	if err != nil || !fp.MatchString(first.String()) {
		t.Fatalf("id --identity = %q, %v; want sha256:<64 hex>", first, err)
	}
	again, _, err := run(t, nil, "id", "--identity", path)
	if err != nil || again.String() != first.String() {
		t.Fatalf("id --identity printed %q, then %q, %v: not stable", first, again, err)
	}
	fresh, stderr, err := run(t, nil, "id")
	if err != nil || !fp.MatchString(fresh.String()) || fresh.String() == first.String() {
		t.Fatalf("id without --identity = %q, %v; want a new fingerprint", fresh, err)
	}
	if !strings.Contains(stderr.String(), "--identity") {
		t.Errorf("id without --identity: stderr %q; want a note about --identity", stderr)
	}
	j, _, err := run(t, nil, "id", "--json", "--identity", path)
	if err != nil {
		t.Fatal(err)
	}
	if evs := j.events(t); len(evs) != 1 || evs[0]["fingerprint"].(string)+"\n" != first.String() {
		t.Fatalf("id --json = %q; want the fingerprint %q", j, first)
	}
}

// TestDemo runs the demo as text, then as JSON: one after the other, since
// two at once would see each other's "alice" and rename one of them.
func TestDemo(t *testing.T) {
	t.Parallel()
	t.Run("text", testDemoText)
	t.Run("json", testDemoJSON)
}

func testDemoText(t *testing.T) {
	out, stderr, err := run(t, nil, "demo")
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	lines := out.lines()
	if lines[len(lines)-1] != "demo ok" {
		t.Fatalf("demo's last line is %q; want \"demo ok\"", lines[len(lines)-1])
	}
	for _, want := range []string{"alice: listening on 127.0.0.1:", "bob: found", "carol: connected to", "<alice> hello carol, from alice", "duplicates resolved",
		`bob: received "demo.bin" from alice`, `alice: sent "demo.bin" to bob`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	timed := regexp.MustCompile(`^ *[0-9]+\.[0-9]ms  `)
	for _, l := range lines[:len(lines)-1] {
		if !timed.MatchString(l) {
			t.Errorf("demo line %q does not start with the time since the start", l)
		}
	}
}

func testDemoJSON(t *testing.T) {
	out, _, err := run(t, nil, "demo", "--json")
	if err != nil {
		t.Fatalf("demo --json: %v", err)
	}
	evs := out.events(t)
	last := evs[len(evs)-1]
	if last["event"] != "demo" || last["ok"] != true {
		t.Fatalf("last event %v; want {\"event\":\"demo\",\"ok\":true}", last)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e["event"].(string)]++
		if e["event"] != "demo" && e["node"] == nil {
			t.Errorf("demo event %v has no node", e)
		}
	}
	if kinds["ready"] != 3 || kinds["message"] != 6 || kinds["peers"] != 3 || kinds["received"] != 1 || kinds["sent"] != 1 {
		t.Errorf("demo events %v; want 3 ready, 6 message, 3 peers, 1 received, 1 sent", kinds)
	}
	var sums []any
	for _, e := range evs {
		if e["event"] == "peers" && len(e["peers"].([]any)) != 2 {
			t.Errorf("%v: want 2 peers", e)
		}
		if e["event"] == "received" || e["event"] == "sent" {
			sums = append(sums, e["sha256"])
			if e["bytes"] != float64(16<<20) {
				t.Errorf("%v: want 16 MiB", e)
			}
		}
	}
	if len(sums) == 2 && (sums[0] != sums[1] || len(sums[0].(string)) != 64) {
		t.Errorf("the file's sent and received SHA-256 differ: %v", sums)
	}
}

// TestListenAndChat: lines sent by chat reach the listener in order, to a
// host:port and to an instance name, and chat exits 0 after stdin ends.
func TestListenAndChat(t *testing.T) {
	t.Parallel()
	svc, key := service(t), keyFile(t)
	l := listen(t, svc, "srv", "--key-file", key)
	lines := []string{"first line", "second: ünïcode ✓", "", "  spaces  ", "last"}
	stdin := strings.Join(lines, "\n") + "\n"
	for _, tc := range []struct{ name, to string }{{"by-addr", l.addr()}, {"by-name", "srv"}, {"by-id", l.peer}} {
		t.Run(tc.name, func(t *testing.T) {
			from := "chat-" + tc.name
			out, stderr, err := run(t, strings.NewReader(stdin), "chat", "--json", "--interface", "lo", "--service", svc,
				"--key-file", key, "--name", from, "--to", tc.to)
			if err != nil {
				t.Fatalf("chat --to %s: %v; want success\nstderr:\n%s", tc.to, err, stderr)
			}
			l.stdout.waitEvent(t, "the last message", func(e map[string]any) bool {
				return e["event"] == "message" && e["name"] == from && e["text"] == "last"
			})
			if got := messagesFrom(t, l.stdout, from); !slices.Equal(got, lines) {
				t.Fatalf("listener got %q; want %q", got, lines)
			}
			c := out.waitEvent(t, "chat's connected event", isEvent("connected"))
			if c["name"] != "srv" || c["peer"] != l.peer {
				t.Errorf("connected %v; want name srv, peer %s", c, l.peer)
			}
		})
	}
	conn := l.stdout.waitEvent(t, "the listener's connected event", isEvent("connected"))
	if conn["name"] != "chat-by-addr" || conn["via"] != "accepted" {
		t.Errorf("listener: first connected event %v; want chat-by-addr, via accepted", conn)
	}
}

// TestEcho: listen --echo sends each message back; chat prints it.
func TestEcho(t *testing.T) {
	t.Parallel()
	svc := service(t)
	l := listen(t, svc, "echo", "--insecure", "--echo", "--port", "0")
	r, w := io.Pipe()
	defer w.Close()
	c := start(t, r, "chat", "--json", "--insecure", "--name", "caller", "--to", l.addr())
	for _, text := range []string{"ping", "pong ✓"} {
		io.WriteString(w, text+"\n")
		msg := c.stdout.waitEvent(t, "the echo of "+text, func(e map[string]any) bool {
			return e["event"] == "message" && e["text"] == text
		})
		if msg["name"] != "echo" || msg["peer"] != l.peer {
			t.Errorf("echo %v; want it from echo, peer %s", msg, l.peer)
		}
	}
	w.Close()
	if err := c.wait(t); err != nil {
		t.Fatalf("chat: %v; want success after stdin ends", err)
	}
}

// TestWrongKey: a chat with another key is rejected with a clear error, and
// the listener prints a rejected event saying why.
func TestWrongKey(t *testing.T) {
	t.Parallel()
	svc := service(t)
	l := listen(t, svc, "keyed", "--key-file", keyFile(t))
	out, _, err := run(t, strings.NewReader("must not arrive\n"), "chat", "--json", "--key-file", keyFile(t), "--to", l.addr())
	if err == nil || ExitCode(err) != 1 {
		t.Fatalf("chat with the wrong key: %v; want an error (exit 1)", err)
	}
	var stderr bytes.Buffer
	PrintError(&stderr, err)
	if !regexp.MustCompile(`^nearnet: .*key mismatch`).MatchString(stderr.String()) || strings.Contains(stderr.String(), "nearnet: nearnet:") {
		t.Errorf("stderr %q; want \"nearnet: ...key mismatch...\" once prefixed", stderr.String())
	}
	rej := out.waitEvent(t, "chat's rejected event", isEvent("rejected"))
	if !strings.Contains(rej["reason"].(string), "key mismatch") || rej["target"] != l.addr() {
		t.Errorf("chat: rejected %v; want the reason to name the key mismatch, and target %s", rej, l.addr())
	}
	rej = l.stdout.waitEvent(t, "the listener's rejected event", isEvent("rejected"))
	if !strings.Contains(rej["reason"].(string), "key mismatch") || rej["addr"] == "" {
		t.Errorf("listener: rejected %v; want the key mismatch and the address", rej)
	}
	if got := messagesFrom(t, l.stdout, ""); len(got) > 0 {
		t.Errorf("the listener printed messages %q from a peer with the wrong key", got)
	}
}

// TestChatStar: without --to, chat advertises, browses and connects to
// every peer found; a line reaches all of them.
func TestChatStar(t *testing.T) {
	t.Parallel()
	svc, key := service(t), keyFile(t)
	a := listen(t, svc, "a", "--key-file", key)
	b := listen(t, svc, "b", "--key-file", key)
	r, w := io.Pipe()
	defer w.Close()
	c := start(t, r, "chat", "--json", "--interface", "lo", "--service", svc, "--key-file", key, "--name", "star")
	c.stdout.waitEvent(t, "chat's ready event", isEvent("ready"))
	for _, l := range []*listener{a, b} {
		c.stdout.waitEvent(t, "connected to "+l.name, func(e map[string]any) bool {
			return e["event"] == "connected" && e["peer"] == l.peer
		})
	}
	io.WriteString(w, "hello everyone\n")
	w.Close()
	if err := c.wait(t); err != nil {
		t.Fatalf("chat: %v; want success", err)
	}
	for _, l := range []*listener{a, b} {
		l.stdout.waitEvent(t, l.name+" seeing the star chat disconnect", disconnectedFrom("star"))
		if got := messagesFrom(t, l.stdout, "star"); !slices.Equal(got, []string{"hello everyone"}) {
			t.Errorf("%s got %q from the star chat; want [hello everyone]", l.name, got)
		}
	}
}

// TestChatWaitsForAPeer: with nobody around, a line fails after --wait.
func TestChatWaitsForAPeer(t *testing.T) {
	t.Parallel()
	_, _, err := run(t, strings.NewReader("anyone?\n"), "chat", "--interface", "lo", "--service", service(t),
		"--insecure", "--wait", "300ms")
	if err == nil || !strings.Contains(err.Error(), "--wait") {
		t.Fatalf("chat alone: %v; want an error naming --wait", err)
	}
}

func TestBrowse(t *testing.T) {
	t.Parallel()
	svc := service(t)
	l := listen(t, svc, "visible", "--insecure")
	p := start(t, nil, "browse", "--json", "--interface", "lo", "--service", svc, "--timeout", "2s")
	found := p.stdout.waitEvent(t, "found visible", isEvent("found"))
	if found["name"] != "visible" || found["peer"] != l.peer || int(found["port"].(float64)) != l.port {
		t.Errorf("found %v; want name visible, peer %s, port %d", found, l.peer, l.port)
	}
	if !slices.Contains(found["addrs"].([]any), any("127.0.0.1")) {
		t.Errorf("found %v; want 127.0.0.1 among the addresses", found)
	}
	if found["txt"].(map[string]any)["id"] != l.peer {
		t.Errorf("found %v; want TXT id=%s", found, l.peer)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("browse --timeout: %v; want exit 0", err)
	}
	// Readable output.
	out, _, err := run(t, nil, "browse", "--interface", "lo", "--service", svc, "--timeout", "1s")
	if err != nil || !strings.Contains(out.String(), "found visible (peer "+l.peer[:8]+"…) at 127.0.0.1:") {
		t.Errorf("browse = %q, %v; want a readable found line", out, err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{}, "no command"},
		{[]string{"fly"}, `unknown command "fly"; commands: ` + commandList()},
		{[]string{"--json", "browse"}, "flags go after the command name"},
		{[]string{"listen"}, "--key-file PATH"},
		{[]string{"chat", "--to", "x"}, "--insecure to run without"},
		{[]string{"chat", "--to", "x"}, "--trust FINGERPRINT"},
		{[]string{"listen", "--insecure", "--key-file", "k"}, "--key-file and --insecure each choose a security mode"},
		{[]string{"listen", "--trust", "sha256:" + strings.Repeat("ab", 32), "--known-peers", "kp"}, "--trust and --known-peers"},
		{[]string{"listen", "--insecure", "--port", "70000"}, `invalid value "70000" for flag --port: must be a port number, 0-65535`},
		{[]string{"listen", "--insecure", "--port", "-1"}, "--port"},
		{[]string{"listen", "--insecure", "--port", "http"}, "--port"},
		{[]string{"listen", "--insecure", "--interface", "nosuch0"}, "--interface: no such interface"},
		{[]string{"listen", "--trust", "sha1:abcd"}, "--trust"},
		{[]string{"listen", "--insecure", "--tofu"}, "--tofu needs --known-peers"},
		{[]string{"listen", "--insecure", "--identity", filepath.Join(dir, "id")}, "--identity has no effect with --insecure"},
		{[]string{"browse", "--timeout", "-1s"}, "--timeout: must not be negative"},
		{[]string{"browse", "--timeout", "soon"}, "--timeout"},
		{[]string{"chat", "--insecure", "--wait", "5"}, "--wait"},
		{[]string{"chat", "--insecure", "--to", ""}, "--to: empty target"},
		{[]string{"keygen", "extra"}, `unexpected argument "extra"`},
		{[]string{"keygen", "--bogus"}, "flag provided but not defined: --bogus"},
		{[]string{"browse", "--service", "nearnet"}, `invalid --service "nearnet"`},
		{[]string{"browse", "--name", strings.Repeat("x", 64)}, "invalid --name"},
		{[]string{"listen", "--insecure", "--transport", "udp"}, `invalid value "udp" for flag --transport: must be "quic", "tcp" or "auto"`},
		{[]string{"chat", "--insecure", "--transport", "quic", "--proxy", "socks5://127.0.0.1:1"}, "--transport quic cannot go through a proxy"},
		{[]string{"listen", "--insecure", "--turn", "turn:10.0.0.1:3478"}, "--turn turn:10.0.0.1:3478 needs --turn-credentials PATH"},
		{[]string{"listen", "--insecure", "--turn", "http://10.0.0.1"}, "--turn"},
		{[]string{"listen", "--insecure", "--tun", "nn0"}, "--tun needs --tun-addr"},
		{[]string{"listen", "--insecure", "--tun-addr", "10.9.0.2/24"}, "--tun-addr, --tun-multicast and --tun-with-host need --tun"},
		{[]string{"listen", "--insecure", "--tun", "nn0", "--tun-addr", "10.9.0.2"}, "--tun-addr: want an address with its prefix length"},
		{[]string{"listen", "--insecure", "--tun", "nn0", "--tun-addr", "10.9.0.2/24", "--tun-with-host", "--tun-multicast"}, "--tun-multicast is for --tun alone"},
		{[]string{"chat", "--insecure", "--tun", "nn0", "--tun-addr", "10.9.0.2/24", "--proxy", "socks5://127.0.0.1:1"}, "--proxy does not apply inside --tun"},
	} {
		_, stderr, err := run(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nearnet %s: error %v; want one containing %q", strings.Join(tc.args, " "), err, tc.want)
			continue
		}
		var ue *UsageError
		if !errors.As(err, &ue) || ExitCode(err) != 2 {
			t.Errorf("nearnet %s: %v is not a usage error (exit %d)", strings.Join(tc.args, " "), err, ExitCode(err))
		}
		if _, isCmd := commands[append(tc.args, "")[0]]; !isCmd && !strings.Contains(stderr.String(), "commands:") {
			t.Errorf("nearnet %s: stderr %q; want the usage listing the commands", strings.Join(tc.args, " "), stderr)
		}
	}
}

func TestCommandList(t *testing.T) {
	for _, name := range []string{"browse", "chat", "demo", "id", "keygen", "listen"} {
		if !strings.Contains(", "+commandList()+",", ", "+name+",") {
			t.Errorf("command list %q lacks %s", commandList(), name)
		}
	}
}

func TestFileErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	_, _, err := run(t, nil, "listen", "--key-file", missing)
	if err == nil || ExitCode(err) != 1 || !strings.Contains(err.Error(), "--key-file") || !strings.Contains(err.Error(), missing) {
		t.Errorf("listen --key-file missing: %v; want an error naming the flag and the file (exit 1)", err)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"help", "chat"}, {"chat", "-h"}, {"listen", "--help"}} {
		out, _, err := run(t, nil, args...)
		if err != nil || ExitCode(err) != 0 || !strings.Contains(out.String(), "usage: nearnet") {
			t.Errorf("nearnet %s = %q, %v; want usage on stdout and exit 0", strings.Join(args, " "), out, err)
		}
	}
	out, _, _ := run(t, nil, "chat", "-h")
	for _, want := range []string{"--to TARGET", "--wait D", "--key-file PATH", "--json", "When stdin ends"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("chat -h lacks %q:\n%s", want, out)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain ünïcode ✓":   "plain ünïcode ✓",
		"tab\tkept":         "tab\tkept",
		"bell\a esc\x1b[2J": `bell\a esc\x1b[2J`,
		"two\nlines":        `two\nlines`,
		"bad \xff utf8":     `bad \xff utf8`,
		"bidi \u202e":       `bidi \u202e`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestPinned: pinned identities connect; a pin of another identity fails
// clearly on the dialer, and a dialer the listener does not trust is
// refused with a rejected event.
func TestPinned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fingerprint := func(path string) string {
		out, _, err := run(t, nil, "id", "--identity", path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	p, q, r := filepath.Join(dir, "p"), filepath.Join(dir, "q"), filepath.Join(dir, "r")
	fpP, fpQ, fpR := fingerprint(p), fingerprint(q), fingerprint(r)
	l := listen(t, service(t), "pinned", "--identity", p, "--trust", fpQ)
	if _, _, err := run(t, strings.NewReader("pinned hello\n"), "chat", "--identity", q, "--trust", fpP, "--name", "q", "--to", l.addr()); err != nil {
		t.Fatalf("chat with matching pins: %v", err)
	}
	l.stdout.waitEvent(t, "the pinned message", func(e map[string]any) bool { return e["text"] == "pinned hello" })

	_, _, err := run(t, strings.NewReader("x\n"), "chat", "--identity", q, "--trust", fpR, "--to", l.addr())
	if err == nil || !strings.Contains(err.Error(), "not in the trusted set") {
		t.Errorf("chat pinning another identity: %v; want an error saying the peer is not trusted", err)
	}
	out, _, err := run(t, strings.NewReader("x\n"), "chat", "--json", "--identity", r, "--trust", fpP, "--to", l.addr())
	if err == nil || ExitCode(err) != 1 {
		t.Errorf("chat from an untrusted identity: %v; want an error", err)
	}
	out.waitEvent(t, "the dialer's rejected event", isEvent("rejected"))
	l.stdout.waitEvent(t, "the listener's rejected event", func(e map[string]any) bool {
		return e["event"] == "rejected" && strings.Contains(e["reason"].(string), fpR)
	})
}

// TestTrustOnFirstUse: --known-peers with --tofu records the listener's
// fingerprint; without --tofu the file then admits it, and an empty one
// does not.
func TestTrustOnFirstUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id := filepath.Join(dir, "listener.pem")
	out, _, err := run(t, nil, "id", "--identity", id)
	if err != nil {
		t.Fatal(err)
	}
	fp := strings.TrimSpace(out.String())
	known := filepath.Join(dir, "known")
	l := listen(t, service(t), "tofu", "--identity", id, "--known-peers", filepath.Join(dir, "listener-known"), "--tofu")
	if _, _, err := run(t, strings.NewReader("first\n"), "chat", "--known-peers", known, "--to", l.addr()); err == nil {
		t.Fatal("chat with an empty known-peers file and no --tofu connected")
	}
	if _, _, err := run(t, strings.NewReader("second\n"), "chat", "--known-peers", known, "--tofu", "--to", l.addr()); err != nil {
		t.Fatalf("chat --tofu: %v", err)
	}
	b, err := os.ReadFile(known)
	if err != nil || !strings.Contains(string(b), fp) {
		t.Fatalf("known-peers file after --tofu: %q, %v; want %s in it", b, err, fp)
	}
	if _, _, err := run(t, strings.NewReader("third\n"), "chat", "--known-peers", known, "--to", l.addr()); err != nil {
		t.Fatalf("chat with the recorded peer: %v", err)
	}
	l.stdout.waitEvent(t, "the third message", func(e map[string]any) bool { return e["text"] == "third" })
}

// TestListenStopsOnCancel: cancelling Run's context (SIGINT in the command)
// ends listen with success.
func TestListenStopsOnCancel(t *testing.T) {
	t.Parallel()
	l := listen(t, service(t), "stopper", "--insecure")
	l.cancel()
	if err := l.wait(t); err != nil {
		t.Fatalf("listen after cancellation: %v; want nil", err)
	}
}

// TestChatStarRejected: without --to, a peer that refuses the chat is
// reported, and the chat fails after --wait saying so.
func TestChatStarRejected(t *testing.T) {
	t.Parallel()
	svc := service(t)
	listen(t, svc, "other-key", "--key-file", keyFile(t))
	out, _, err := run(t, strings.NewReader("anyone?\n"), "chat", "--json", "--interface", "lo", "--service", svc,
		"--key-file", keyFile(t), "--wait", "3s")
	if err == nil || !strings.Contains(err.Error(), "rejected: other-key: pre-shared key mismatch") {
		t.Fatalf("chat: %v; want the wait to fail naming the rejection", err)
	}
	rej := out.waitEvent(t, "the rejected event", isEvent("rejected"))
	if rej["target"] != "other-key" {
		t.Errorf("rejected %v; want target other-key", rej)
	}
}

// TestChatEndsWhenTargetLeaves: with --to, chat ends (exit 0) when the
// peer closes the connection, even while stdin is open.
func TestChatEndsWhenTargetLeaves(t *testing.T) {
	t.Parallel()
	l := listen(t, service(t), "leaving", "--insecure")
	r, w := io.Pipe()
	defer w.Close()
	c := start(t, r, "chat", "--json", "--insecure", "--to", l.addr())
	c.stdout.waitEvent(t, "connected", isEvent("connected"))
	// Until listen has accepted it, the connection is the node's, whose
	// Close resets it: wait for listen's connected event too.
	l.stdout.waitEvent(t, "the listener's connected event", isEvent("connected"))
	l.cancel()
	if err := c.wait(t); err != nil {
		t.Fatalf("chat after the peer left: %v; want nil", err)
	}
	c.stdout.waitEvent(t, "disconnected", isEvent("disconnected"))
}

// TestTransports: listen and chat over each transport, by address and by
// name (discovery finds "_svc._udp" for QUIC), and a wrong key is refused
// clearly on both sides over each.
func TestTransports(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{"quic", "tcp", "auto"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			svc, key := service(t), keyFile(t)
			l := listen(t, svc, "srv-"+tr, "--key-file", key, "--transport", tr)
			for _, to := range []string{l.addr(), l.name} {
				_, stderr, err := run(t, strings.NewReader("hello over "+tr+"\n"), "chat", "--json", "--interface", "lo", "--service", svc,
					"--key-file", key, "--name", "chat-"+tr, "--to", to, "--transport", tr)
				if err != nil {
					t.Fatalf("chat --transport %s --to %s: %v\nstderr:\n%s", tr, to, err, stderr)
				}
			}
			l.stdout.waitEvents(t, "disconnects of chat-"+tr, 2, disconnectedFrom("chat-"+tr))
			if got := messagesFrom(t, l.stdout, "chat-"+tr); !slices.Equal(got, []string{"hello over " + tr, "hello over " + tr}) {
				t.Fatalf("listener got %q", got)
			}
			_, _, err := run(t, strings.NewReader("must not arrive\n"), "chat", "--json", "--key-file", keyFile(t), "--to", l.addr(), "--transport", tr)
			var stderr bytes.Buffer
			PrintError(&stderr, err)
			if err == nil || !strings.Contains(stderr.String(), "key mismatch") {
				t.Fatalf("wrong key over %s: %v", tr, err)
			}
			rej := l.stdout.waitEvent(t, "the listener's rejected event", isEvent("rejected"))
			if !strings.Contains(rej["reason"].(string), "key mismatch") {
				t.Errorf("listener: rejected %v; want the key mismatch", rej)
			}
		})
	}
}

// TestEchoStreamsAndBinary: listen --echo sends a stream's bytes back on it
// and closes its write side at the end (half-close), reports the stream,
// and prints a message that is not UTF-8 with its exact bytes in base64.
func TestEchoStreamsAndBinary(t *testing.T) {
	t.Parallel()
	svc := service(t)
	l := listen(t, svc, "echo", "--insecure", "--echo", "--port", "0")
	node, err := nearnet.NewNode(&nearnet.Config{Security: nearnet.SecurityNone, Hidden: true, Name: "lib"})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := node.Connect(ctx, l.addr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenStream(ctx, "tar")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("stream bytes "), 10000)
	go func() {
		s.Write(payload)
		s.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	s.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echoed stream: %d bytes, %v; want the %d sent, then EOF", len(got), err, len(payload))
	}
	ev := l.stdout.waitEvent(t, "the stream event", isEvent("stream"))
	if ev["stream"] != "tar" || ev["bytes"] != float64(len(payload)) || ev["name"] != "lib" {
		t.Errorf("stream event %v; want stream tar, %d bytes, from lib", ev, len(payload))
	}
	bin := []byte{0xff, 0x00, 'h', 'i', 0xc3}
	if err := c.SendMessage(ctx, bin); err != nil {
		t.Fatal(err)
	}
	msg := l.stdout.waitEvent(t, "the binary message", func(e map[string]any) bool {
		return e["event"] == "message" && e["base64"] != nil
	})
	if msg["base64"] != base64.StdEncoding.EncodeToString(bin) {
		t.Errorf("message %v; want base64 %s", msg, base64.StdEncoding.EncodeToString(bin))
	}
	c.Close()
}

// TestVersion: nearnet version (and --version, which once suggested
// "nearnet browse --version") prints the version and protocol.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, err := run(t, nil, args...)
		if err != nil || !regexp.MustCompile(`^nearnet \S+.*, protocol nearnet\.v1, go`).MatchString(out.String()) {
			t.Errorf("nearnet %s = %q, %v; want the version line", strings.Join(args, " "), out, err)
		}
	}
	out, _, err := run(t, nil, "version", "--json")
	if ev := out.waitEvent(t, "the version event", isEvent("version")); err != nil || ev["protocol"] != float64(1) || ev["version"] == "" {
		t.Errorf("version --json = %v, %v", ev, err)
	}
}

// TestHelpListsOnlyUsedFlags: keygen -h and demo -h list the flags they
// read, not the thirty network and security flags they ignore.
func TestHelpListsOnlyUsedFlags(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"keygen", "demo", "version"} {
		out, _, err := run(t, nil, cmd, "-h")
		if err != nil || !strings.Contains(out.String(), "\n  --json") || strings.Contains(out.String(), "\n  --key-file") || strings.Contains(out.String(), "\n  --proxy") {
			t.Errorf("%s -h = %v:\n%s\nwant --json listed and no --key-file or --proxy", cmd, err, out)
		}
	}
	if out, _, _ := run(t, nil, "listen", "-h"); !strings.Contains(out.String(), "\n  --key-file") {
		t.Errorf("listen -h lacks the global flags:\n%s", out)
	}
}

// TestChatToName: --to matches instance names ignoring case, and a name
// not found is reported with the names that were seen.
func TestChatToName(t *testing.T) {
	t.Parallel()
	svc := service(t)
	l := listen(t, svc, "Kitchen", "--insecure")
	_, stderr, err := run(t, strings.NewReader("hi\n"), "chat", "--insecure", "--interface", "lo", "--service", svc, "--to", "kitchen")
	if err != nil {
		t.Fatalf("chat --to kitchen (advertised as Kitchen): %v\n%s", err, stderr)
	}
	l.stdout.waitEvent(t, "the message", func(e map[string]any) bool { return e["event"] == "message" && e["text"] == "hi" })
	_, _, err = run(t, strings.NewReader("hi\n"), "chat", "--insecure", "--interface", "lo", "--service", svc, "--to", "pantry", "--wait", "2s")
	if err == nil || !strings.Contains(err.Error(), `no peer "pantry"`) || !strings.Contains(err.Error(), "peers seen: Kitchen") {
		t.Errorf("chat --to pantry: %v; want it not found, with the peers seen (Kitchen)", err)
	}
}

// TestPermanentFailuresEndTheWait: an identity chat does not trust, or a
// wrong key, ends chat --to and send --to at once with that cause, however
// long --wait is; a port where nothing listens is retried until --wait.
func TestPermanentFailuresEndTheWait(t *testing.T) {
	t.Parallel()
	svc := service(t)
	key := keyFile(t)
	l := listen(t, svc, "pinned", "--key-file", key)
	stranger := "sha256:" + strings.Repeat("ab", 32)
	file := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(file, []byte("x"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"chat", "--trust", stranger, "--to", l.addr()}, "not in the trusted set"},
		{[]string{"chat", "--key-file", keyFile(t), "--to", l.addr()}, "key mismatch"},
		{[]string{"send", file, "--trust", stranger, "--to", l.addr()}, "not in the trusted set"},
		{[]string{"send", file, "--key-file", keyFile(t), "--to", l.addr()}, "key mismatch"},
	} {
		// A --wait far beyond the test's own deadline: only failing at once passes.
		out, _, err := run(t, strings.NewReader("x\n"), append(tc.args, "--wait", "1h")...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "gave up") {
			t.Errorf("%s: %v; want the failure (%s) at once", strings.Join(tc.args[:2], " "), err, tc.want)
		}
		if strings.Contains(out.String(), tc.want) {
			t.Errorf("%s: stdout %q repeats the error", strings.Join(tc.args[:2], " "), out)
		}
	}
	_, _, err := run(t, nil, "send", file, "--insecure", "--to", "127.0.0.1:1", "--wait", "1s")
	if err == nil || !strings.Contains(err.Error(), "gave up after --wait 1s") {
		t.Errorf("send to a closed port: %v; want it retried until --wait", err)
	}
}

// TestErrorHints: errors with a usual remedy say it; an internal package's
// name does not reach the user.
func TestErrorHints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("nearnet: advertise: %w", discovery.ErrNoInterfaces), "--interface lo"},
		{fmt.Errorf("nearnet: listen: quict: %w", &net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}), "choose another --port"},
	} {
		var b bytes.Buffer
		PrintError(&b, tc.err)
		if !strings.Contains(b.String(), tc.want) || strings.Contains(b.String(), "quict") {
			t.Errorf("PrintError(%v) = %q; want %q and no quict", tc.err, b.String(), tc.want)
		}
	}
	// The busy port, for real.
	svc := service(t)
	l := listen(t, svc, "first", "--insecure", "--port", "0")
	_, _, err := run(t, nil, "listen", "--insecure", "--interface", "lo", "--service", svc, "--port", strconv.Itoa(l.port))
	var b bytes.Buffer
	if PrintError(&b, err); err == nil || !strings.Contains(b.String(), "choose another --port") {
		t.Errorf("listen on a busy port: %q; want the --port hint", b.String())
	}
}

// TestReachable: a listener on a wildcard address names addresses a peer
// can dial, loopback last.
func TestReachable(t *testing.T) {
	got := reachable(false, 7000)
	if len(got) == 0 || got[len(got)-1] != "[::1]:7000" && got[len(got)-1] != "127.0.0.1:7000" {
		t.Errorf("reachable = %q; want this host's addresses with loopback last", got)
	}
	for _, a := range reachable(true, 7000) {
		if strings.HasPrefix(a, "[") {
			t.Errorf("reachable(only IPv4) has %s", a)
		}
	}
}

// TestChatPathUnavailable: chat and listen with --turn naming a STUN
// server where nothing listens: the chat reports that no path beyond the
// LAN can be prepared, naming the server and why (path-unavailable, in
// JSON and as text), and the LAN connection carries the chat on.
func TestChatPathUnavailable(t *testing.T) {
	t.Parallel()
	svc, key := service(t), keyFile(t)
	ln, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "stun:" + ln.LocalAddr().String()
	ln.Close() // nothing listens there now
	l := listen(t, svc, "srv", "--key-file", key, "--turn", dead)
	for _, asJSON := range []bool{true, false} {
		r, w := io.Pipe()
		args := []string{"chat", "--service", svc, "--key-file", key, "--name", "ice", "--to", l.addr(), "--turn", dead}
		if asJSON {
			args = append(args, "--json")
		}
		c := start(t, r, args...)
		if asJSON {
			e := c.stdout.waitEvent(t, "chat's path-unavailable event", isEvent("path-unavailable"))
			if e["peer"] != l.peer || !strings.Contains(e["reason"].(string), dead) || !strings.Contains(e["reason"].(string), "no answer") {
				t.Errorf("event %v; want the listener, naming %s and that it did not answer", e, dead)
			}
		} else {
			deadline := time.Now().Add(waitTimeout)
			for !strings.Contains(c.stdout.String(), "no path beyond the LAN for srv") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(c.stdout.String(), "ICE server "+dead+": no answer") {
				t.Errorf("chat's output:\n%s\nwant a line saying no path beyond the LAN, naming %s", c.stdout, dead)
			}
		}
		io.WriteString(w, "still over the LAN\n")
		w.Close()
		if err := c.wait(t); err != nil {
			t.Fatalf("chat: %v; want success", err)
		}
	}
	l.stdout.waitEvents(t, "disconnects of the chats", 2, disconnectedFrom("ice"))
	if got := messagesFrom(t, l.stdout, "ice"); !slices.Equal(got, []string{"still over the LAN", "still over the LAN"}) {
		t.Errorf("listener got %q; want both lines", got)
	}
}
