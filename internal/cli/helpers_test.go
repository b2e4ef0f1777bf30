package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds each wait for output or an exit: a deadline for a
// hang, not a performance threshold.
const waitTimeout = 20 * time.Second

// output is a stdout or stderr that tests can wait on while Run writes it
// from several goroutines.
type output struct {
	mu      sync.Mutex // guards buf and changed
	buf     bytes.Buffer
	changed chan struct{} // closed at the next write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) lines() []string {
	s := strings.TrimSuffix(o.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// events parses every line as a JSON object, failing the test on a line
// that is not one or has no "event".
func (o *output) events(t testing.TB) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, l := range o.lines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line %q is not a JSON object: %v", l, err)
		}
		if _, ok := m["event"].(string); !ok {
			t.Fatalf("output line %q has no string \"event\" field", l)
		}
		checkFields(t, m)
		evs = append(evs, m)
	}
	return evs
}

// documented are the fields each event must carry, with their JSON types.
var documented = map[string]map[string]string{
	"ready":            {"name": "string", "peer": "string", "port": "number"},
	"found":            {"name": "string", "peer": "string", "port": "number", "addrs": "array", "txt": "object"},
	"updated":          {"name": "string", "peer": "string", "port": "number", "addrs": "array", "txt": "object"},
	"lost":             {"name": "string", "peer": "string", "port": "number", "addrs": "array", "txt": "object"},
	"connected":        {"name": "string", "peer": "string"},
	"disconnected":     {"name": "string", "peer": "string"},
	"message":          {"name": "string", "peer": "string", "text": "string"},
	"datagram":         {"name": "string", "peer": "string", "text": "string"},
	"stream":           {"name": "string", "peer": "string", "stream": "string", "bytes": "number"},
	"rejected":         {"reason": "string"},
	"proxy":            {"proxy": "string", "latency_ms": "number", "error": "string"},
	"joined":           {"name": "string", "peer": "string", "fingerprint": "string"},
	"left":             {"name": "string", "peer": "string"},
	"path-unavailable": {"name": "string", "peer": "string", "reason": "string"},
}

func checkFields(t testing.TB, m map[string]any) {
	t.Helper()
	for field, typ := range documented[m["event"].(string)] {
		v, ok := m[field]
		var got string
		switch v.(type) {
		case string:
			got = "string"
		case float64:
			got = "number"
		case []any:
			got = "array"
		case map[string]any:
			got = "object"
		}
		if !ok || got != typ {
			t.Errorf("event %v: field %q is %v (%s); want a %s", m, field, v, got, typ)
		}
	}
}

// waitEvent waits until o holds an event for which match is true, and
// returns it.
func (o *output) waitEvent(t testing.TB, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	return o.waitEvents(t, what, 1, match)[0]
}

// waitEvents waits until o holds n events for which match is true, and
// returns the first n.
func (o *output) waitEvents(t testing.TB, what string, n int, match func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		ch := o.changed
		o.mu.Unlock()
		var got []map[string]any
		for _, e := range o.events(t) {
			if match(e) {
				if got = append(got, e); len(got) == n {
					return got
				}
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%d of %d %s within %v; output:\n%s", len(got), n, what, waitTimeout, o)
		}
	}
}

// disconnectedFrom matches the disconnected event of the named peer: a
// receiver prints it after every message from that connection, so once
// it is there, so are they. A peer's exit says only that this side's node
// acknowledged what it sent, not that the receiver printed it yet.
func disconnectedFrom(name string) func(map[string]any) bool {
	return func(e map[string]any) bool { return e["event"] == "disconnected" && e["name"] == name }
}

func isEvent(kind string) func(map[string]any) bool {
	return func(e map[string]any) bool { return e["event"] == kind }
}

// messagesFrom returns the texts of the message events from the named peer.
func messagesFrom(t testing.TB, o *output, name string) []string {
	texts := []string{}
	for _, e := range o.events(t) {
		if e["event"] == "message" && e["name"] == name {
			texts = append(texts, e["text"].(string))
		}
	}
	return texts
}

// proc is a Run in progress.
type proc struct {
	args           []string
	stdout, stderr *output
	cancel         context.CancelFunc
	done           chan struct{}
	err            error // valid after done
}

// start runs the command in the background; the test's cleanup cancels it
// and waits for it to return.
func start(t testing.TB, stdin io.Reader, args ...string) *proc {
	t.Helper()
	return startRun(t, context.Background(), stdin, nil, args...)
}

// startRun is start with the caller's ctx (which may carry a progress
// hook) and stdout going to w (nil: the proc's stdout).
func startRun(t testing.TB, ctx context.Context, stdin io.Reader, w io.Writer, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	p := &proc{args: args, stdout: newOutput(), stderr: newOutput(), cancel: cancel, done: make(chan struct{})}
	if w == nil {
		w = p.stdout
	}
	go func() {
		defer close(p.done)
		p.err = Run(ctx, args, stdin, w, p.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(waitTimeout):
			t.Errorf("nearnet %s did not return after cancellation", strings.Join(args, " "))
		}
		if t.Failed() {
			t.Logf("nearnet %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// wait waits for p to return and gives its error.
func (p *proc) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(waitTimeout):
		t.Fatalf("nearnet %s did not return within %v; stdout:\n%s\nstderr:\n%s",
			strings.Join(p.args, " "), waitTimeout, p.stdout, p.stderr)
		return nil
	}
}

// run runs the command to completion.
func run(t testing.TB, stdin io.Reader, args ...string) (stdout, stderr *output, err error) {
	t.Helper()
	p := start(t, stdin, args...)
	err = p.wait(t)
	return p.stdout, p.stderr, err
}

// keyFile writes a new key from `nearnet keygen` to a private file.
func keyFile(t testing.TB) string {
	t.Helper()
	out, _, err := run(t, nil, "keygen")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(path, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// service returns a service type of the test's own, so that tests running
// in parallel on loopback do not see each other's peers.
func service(t testing.TB) string {
	serviceMu.Lock()
	defer serviceMu.Unlock()
	serviceN++
	return fmt.Sprintf("_nntest%d._tcp", serviceN)
}

var (
	serviceMu sync.Mutex // guards serviceN
	serviceN  int
)

// listener is a running `nearnet listen --json` on loopback and its ready
// event.
type listener struct {
	*proc
	name, peer string
	port       int
}

func listen(t testing.TB, svc, name string, args ...string) *listener {
	t.Helper()
	p := start(t, nil, append([]string{"listen", "--json", "--interface", "lo", "--service", svc, "--name", name}, args...)...)
	ready := p.stdout.waitEvent(t, name+"'s ready event", isEvent("ready"))
	l := &listener{proc: p, name: ready["name"].(string), peer: ready["peer"].(string), port: int(ready["port"].(float64))}
	if l.name != name || len(l.peer) != 32 || l.port == 0 {
		t.Fatalf("ready event %v; want name %q, a peer ID and a port", ready, name)
	}
	return l
}

func (l *listener) addr() string { return fmt.Sprintf("127.0.0.1:%d", l.port) }
