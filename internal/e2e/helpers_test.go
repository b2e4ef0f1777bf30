package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
)

// waitTimeout bounds every wait for an event or an exit. It is a deadline
// for a hang, not a performance threshold, so it is generous (the CLI may be
// built with -race).
const waitTimeout = 30 * time.Second

// event is one line of `nearnet --json` output. Addrs and TXT are kept raw
// so the tests accept any reasonable JSON shape for them (see addrsHave,
// txtMap).
type event struct {
	Event  string          `json:"event"`
	Name   string          `json:"name"`
	Peer   string          `json:"peer"`
	Port   int             `json:"port"`
	Addrs  json.RawMessage `json:"addrs"`
	TXT    json.RawMessage `json:"txt"`
	Text   string          `json:"text"`
	Reason string          `json:"reason"`
}

func (e event) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

func isEvent(kind string) func(event) bool {
	return func(e event) bool { return e.Event == kind }
}

// waitEvent waits for the first event, from the start of p's output, that
// matches (as an event, or as any type a JSON line decodes into); what
// names it in the failure message. When the test fails, the output of every
// process is logged by netns.
func waitEvent[E any](t testing.TB, p *netns.Proc, what string, match func(E) bool) E {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ev, err := netns.WaitJSON(ctx, p, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return ev
}

// events returns the events p has printed so far that match.
func events(p *netns.Proc, match func(event) bool) []event {
	var out []event
	for _, e := range netns.JSONLines[event](p) {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitExit waits for p to exit and returns its exit error.
func waitExit(t testing.TB, p *netns.Proc) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := p.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatalf("%s did not exit: %v", p, err)
	}
	return err
}

// runCLI runs the CLI to completion in host h and returns its stdout and
// stderr. Commands that use no network run in a host too: nothing the CLI
// does may reach the machine's interfaces.
func runCLI(t testing.TB, h *netns.Host, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := h.Command(ctx, cli(t), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("nearnet %s did not finish: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String(), err
}

var keyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// keyFile runs `nearnet keygen` in h and stores the key in a new file.
func keyFile(t testing.TB, h *netns.Host) string {
	t.Helper()
	out, stderr, err := runCLI(t, h, "keygen")
	key := strings.TrimSpace(out)
	if err != nil || !keyRE.MatchString(key) {
		t.Fatalf("nearnet keygen = %q, %v (stderr %q); want 64 hex digits", out, err, stderr)
	}
	path := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var fingerprintRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// identity runs `nearnet id --identity path` in h and returns the
// fingerprint it prints (the file is created when missing).
func identity(t testing.TB, h *netns.Host, path string) string {
	t.Helper()
	out, stderr, err := runCLI(t, h, "id", "--identity", path)
	fp := strings.TrimSpace(out)
	if err != nil || !fingerprintRE.MatchString(fp) {
		t.Fatalf("nearnet id --identity %s = %q, %v (stderr %q); want sha256:<64 hex>", path, out, err, stderr)
	}
	return fp
}

// start starts the CLI with args in h. If the test fails while it is still
// running, it is sent SIGQUIT first, so the Go runtime adds every
// goroutine's stack to the stderr that netns logs: a hang shows where.
func start(t testing.TB, h *netns.Host, args ...string) *netns.Proc {
	t.Helper()
	return startBin(t, h, cli(t), args...)
}

// startBin is start with another nearnet binary (an older build, say).
func startBin(t testing.TB, h *netns.Host, bin string, args ...string) *netns.Proc {
	t.Helper()
	cmd := h.Command(context.Background(), bin, args...)
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	p := netns.StartCmd(t, cmd)
	// Registered after StartCmd's cleanup, so it runs before it.
	t.Cleanup(func() {
		if _, exited := p.ExitCode(); !t.Failed() || exited {
			return
		}
		p.Signal(syscall.SIGQUIT)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Wait(ctx)
	})
	return p
}

// listener is a running `nearnet listen --json` and its ready event.
type listener struct {
	*netns.Proc
	host  *netns.Host
	ready event
}

// listen starts `nearnet listen --json --interface eth0 --name name` plus
// args (the security mode) in h and waits until it is ready.
func listen(t testing.TB, h *netns.Host, name string, args ...string) *listener {
	t.Helper()
	p := start(t, h, append([]string{"listen", "--json", "--interface", "eth0", "--name", name}, args...)...)
	ready := waitEvent(t, p, name+"'s ready event", isEvent("ready"))
	if ready.Name != name || ready.Peer == "" || ready.Port == 0 {
		t.Fatalf("%s: ready event %s; want name %q, a peer ID and a port", h.Name, ready, name)
	}
	return &listener{Proc: p, host: h, ready: ready}
}

// messages returns the texts of the message events from the named sender.
func messages(p *netns.Proc, from string) []string {
	var texts []string
	for _, e := range events(p, isEvent("message")) {
		if e.Name == from {
			texts = append(texts, e.Text)
		}
	}
	return texts
}

// waitMessages waits until p has printed message events from sender with
// want's last text, then checks that the messages from sender are exactly
// want, in order.
func waitMessages(t testing.TB, p *netns.Proc, from string, want []string) {
	t.Helper()
	last := want[len(want)-1]
	waitEvent(t, p, fmt.Sprintf("message %q from %s", last, from), func(e event) bool {
		return e.Event == "message" && e.Name == from && e.Text == last
	})
	if got := messages(p, from); !slices.Equal(got, want) {
		t.Fatalf("%s: messages from %s = %q; want %q", p, from, got, want)
	}
}

// chat starts `nearnet chat --json --interface eth0 --name name` plus args
// in h; its stdin stays open until the test writes and closes it.
func chat(t testing.TB, h *netns.Host, name string, args ...string) *netns.Proc {
	t.Helper()
	return start(t, h, append([]string{"chat", "--json", "--interface", "eth0", "--name", name}, args...)...)
}

// send writes lines to p's stdin and closes it.
func send(t testing.TB, p *netns.Proc, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if err := p.WriteLine(l); err != nil {
			t.Fatalf("write to %s: %v", p, err)
		}
	}
	if err := p.CloseStdin(); err != nil {
		t.Fatalf("close stdin of %s: %v", p, err)
	}
}

// expectRejected waits for p, a dialing chat, to fail: a non-zero exit,
// with stderr or a rejected event matching why.
func expectRejected(t testing.TB, p *netns.Proc, why *regexp.Regexp) {
	t.Helper()
	err := waitExit(t, p)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("%s: exit %v; want a non-zero exit status", p, err)
	}
	explained := why.MatchString(p.Stderr())
	for _, e := range events(p, isEvent("rejected")) {
		explained = explained || why.MatchString(e.Reason)
	}
	if !explained {
		t.Fatalf("%s failed, but neither stderr nor a rejected event says why (want %s); stderr:\n%s", p, why, p.Stderr())
	}
}

// txtMap reads a TXT record given as a JSON object {"k":"v"} or as a list
// of "k=v" strings.
func txtMap(t testing.TB, raw json.RawMessage) map[string]string {
	t.Helper()
	m := map[string]string{}
	if len(raw) == 0 || string(raw) == "null" {
		return m
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err == nil {
		for k, v := range obj {
			if s, ok := v.(string); ok {
				m[k] = s
			} else if v != nil {
				m[k] = fmt.Sprint(v)
			} else {
				m[k] = ""
			}
		}
		return m
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		for _, e := range list {
			k, v, _ := strings.Cut(e, "=")
			m[k] = v
		}
		return m
	}
	t.Fatalf("txt %s is neither an object nor a list of strings", raw)
	return nil
}

// addrsHave reports whether addrs, in whatever JSON shape, holds ip alone
// or with a port.
func addrsHave(addrs json.RawMessage, ip netip.Addr) bool {
	var v any
	if json.Unmarshal(addrs, &v) != nil {
		return false
	}
	var found bool
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if a, err := netip.ParseAddr(v); err == nil && a.Unmap() == ip {
				found = true
			}
			if ap, err := netip.ParseAddrPort(v); err == nil && ap.Addr().Unmap() == ip {
				found = true
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return found
}
