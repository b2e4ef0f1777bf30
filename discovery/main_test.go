package discovery

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	code := m.Run()
	stopNamed() // before the leak check: a goroutine waits for named
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// loConfig selects only the loopback interface: nothing a test sends can
// leave the machine (and the suite runs in a private network namespace).
func loConfig(t testing.TB) Config {
	return Config{Interfaces: []string{"lo"}, Logger: testLogger(t)}
}

// testLogger logs to t when NEARNET_DEBUG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("NEARNET_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testType returns a service type no other test (or test package sharing
// the namespace) uses.
func testType(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "_nt" + hex.EncodeToString(b[:]) + "._tcp"
}

// events collects browse events for assertions.
type events struct {
	mu     sync.Mutex
	all    []Event
	used   map[int]bool
	notify chan struct{}
}

func newEvents() *events { return &events{used: map[int]bool{}, notify: make(chan struct{}, 1)} }

func (e *events) fn(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// wait returns the earliest event not returned before with kind k for
// instance inst, waiting up to timeout.
func (e *events) wait(t testing.TB, k EventKind, inst string, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		e.mu.Lock()
		for i, ev := range e.all {
			if !e.used[i] && ev.Kind == k && ev.Service.Instance == inst {
				e.used[i] = true
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.notify:
		case <-deadline:
			t.Fatalf("no %v event for %q within %v; events so far: %s", k, inst, timeout, e.summary())
			return Event{}
		}
	}
}

func (e *events) summary() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		fmt.Fprintf(&b, "[%v %q port=%d] ", ev.Kind, ev.Service.Instance, ev.Service.Port)
	}
	return b.String()
}

func mustResponder(t testing.TB, cfg Config) *Responder {
	t.Helper()
	r, err := NewResponder(cfg)
	if err != nil {
		t.Fatalf("NewResponder: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func mustBrowser(t testing.TB, cfg Config, typ string, fn func(Event)) *Browser {
	t.Helper()
	b, err := NewBrowser(cfg, typ, fn)
	if err != nil {
		t.Fatalf("NewBrowser: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
