package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/relaytest"
)

// The resume flags reach the Config, and wrong values are usage errors
// naming the flag.
func TestResumeFlags(t *testing.T) {
	t.Parallel()
	fs := newFlagSet("chat")
	if err := fs.parse(&env{stdout: newOutput()}, []string{"--insecure", "--drop-time", "3s", "--resume-window", "0", "--keepalive", "500ms"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := fs.config(true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DropTime != 3*time.Second || cfg.ResumeWindow >= 0 || cfg.KeepAliveIdle != 500*time.Millisecond || cfg.KeepAliveInterval != 250*time.Millisecond {
		t.Errorf("drop %v, resume window %v (want negative: off), keepalive %v/%v", cfg.DropTime, cfg.ResumeWindow, cfg.KeepAliveIdle, cfg.KeepAliveInterval)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--drop-time", "500ms"}, "invalid --drop-time 500ms: must be longer than --keepalive (1s)"},
		{[]string{"--keepalive", "5ms"}, "invalid --keepalive 5ms"},
		{[]string{"--keepalive", "0"}, "invalid --keepalive 0s"},
		{[]string{"--resume-window", "48h"}, "invalid --resume-window 48h0m0s"},
		{[]string{"--resume-window", "-1s"}, "--resume-window: must not be negative"},
		{[]string{"--drop-time", "soon"}, "--drop-time"},
	} {
		_, _, err := run(t, nil, append([]string{"listen", "--insecure"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != 2 {
			t.Errorf("listen %s: %v (exit %d); want a usage error containing %q", strings.Join(tc.args, " "), err, ExitCode(err), tc.want)
		}
	}
}

// The undelivered messages of a lost session are in the disconnected
// event, all of them, in JSON and in the readable line; viability events
// have their documented names and fields.
func TestResumeEvents(t *testing.T) {
	t.Parallel()
	d := &connEvent{head: head{Event: "disconnected"}, Name: "bob", Peer: strings.Repeat("ab", 16),
		Reason: "connection lost and not resumed (2 messages not delivered): ...", Undelivered: []string{"one", "two \x1b[2J"}}
	line := d.text()
	if !strings.Contains(line, `2 not delivered: "one", "two \x1b[2J"`) {
		t.Errorf("text %q; want the undelivered messages quoted and escaped", line)
	}
	b, _ := json.Marshal(d)
	var m map[string]any
	json.Unmarshal(b, &m)
	if u, ok := m["undelivered"].([]any); !ok || len(u) != 2 || u[1] != "two \x1b[2J" {
		t.Errorf("JSON %s; want undelivered [\"one\", \"two ...\"]", b)
	}
	for _, tc := range []struct {
		e    *viabilityEvent
		want string
	}{
		{&viabilityEvent{head: head{Event: "inviable"}, Name: "bob", Peer: d.Peer, Reason: "keepalive pings unanswered"}, "inviable: keepalive pings unanswered"},
		{&viabilityEvent{head: head{Event: "viable"}, Name: "bob", Peer: d.Peer}, "viable again"},
		{&viabilityEvent{head: head{Event: "reconnected"}, Name: "bob", Peer: d.Peer, Addr: "10.0.0.2:5000"}, "reconnected to bob (peer abababab…) at 10.0.0.2:5000"},
	} {
		if got := tc.e.text(); !strings.Contains(got, tc.want) {
			t.Errorf("%s: text %q; want %q in it", tc.e.Event, got, tc.want)
		}
	}
}

// Through a transport that breaks for good, in process so that TestMain's
// goroutine check covers the CLI and the library: chat --to a relay
// resumes directly with the listener, which discovery still advertises
// (reconnected event, the lines typed meanwhile delivered once, in order,
// exit 0); with a resume window and no way back, chat fails naming the
// undelivered lines.
func TestChatThroughBreak(t *testing.T) {
	t.Parallel()
	svc := service(t)
	quick := []string{"--key-file", keyFile(t), "--keepalive", "100ms", "--drop-time", "2s"}

	t.Run("resumes", func(t *testing.T) {
		// The relay resets every redial too: the dialer finds the listener
		// by discovery. A reset while traffic flowed gives the session
		// DropTime to come back; leave room for a loaded machine.
		quick := append(slices.Clone(quick[:len(quick)-1]), "8s")
		l := listen(t, svc, "far", quick...)
		r := relaytest.New(t, l.addr())
		in, w := io.Pipe()
		defer w.Close()
		c := start(t, in, append([]string{"chat", "--json", "--interface", "lo", "--service", svc, "--name", "near",
			"--to", r.Addr()}, quick...)...)
		c.stdout.waitEvent(t, "connected", isEvent("connected"))
		fmt.Fprintln(w, "before")
		l.stdout.waitEvent(t, "before", func(m map[string]any) bool { return m["text"] == "before" })
		r.Cut()
		fmt.Fprintln(w, "during")
		c.stdout.waitEvent(t, "reconnected", isEvent("reconnected"))
		fmt.Fprintln(w, "after")
		w.Close()
		if err := c.wait(t); err != nil {
			t.Fatalf("chat: %v; want nil", err)
		}
		l.stdout.waitEvent(t, "after", func(m map[string]any) bool { return m["text"] == "after" })
		if got := messagesFrom(t, l.stdout, "near"); !slices.Equal(got, []string{"before", "during", "after"}) {
			t.Errorf("listener got %q", got)
		}
	})

	t.Run("resume window runs out", func(t *testing.T) {
		l := listen(t, svc, "far2", quick...)
		r := relaytest.New(t, l.addr())
		in, w := io.Pipe()
		defer w.Close()
		// Another service: discovery cannot find the listener either.
		c := start(t, in, append([]string{"chat", "--json", "--interface", "lo", "--service", service(t), "--name", "near2",
			"--to", r.Addr(), "--resume-window", "1s"}, quick...)...)
		c.stdout.waitEvent(t, "connected", isEvent("connected"))
		r.Cut()
		fmt.Fprintln(w, "lost 1")
		fmt.Fprintln(w, "lost 2")
		d := c.stdout.waitEvent(t, "disconnected", isEvent("disconnected"))
		if u, _ := d["undelivered"].([]any); len(u) != 2 || u[0] != "lost 1" || u[1] != "lost 2" {
			t.Errorf("disconnected %v; want undelivered [lost 1, lost 2]", d)
		}
		if err := c.wait(t); err == nil || !strings.Contains(err.Error(), "2 messages not delivered") {
			t.Errorf("chat: %v; want a failure saying 2 messages were not delivered", err)
		}
	})
}
