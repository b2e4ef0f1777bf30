package cli

import (
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Datagrams are best effort, so the tests below never count on one
// arriving: each line is written to chat's stdin, and written again (at
// most datagramTries times, waiting datagramWait each time) until the
// peer has printed it. On loopback the first one arrives.
const (
	datagramTries = 10
	datagramWait  = time.Second
)

// chatPipe starts chat with args, its stdin a pipe the test writes. The
// pipe is closed when chat returns, so that a write cannot block a test
// whose chat failed.
func chatPipe(t *testing.T, args ...string) (*proc, *io.PipeWriter) {
	t.Helper()
	r, w := io.Pipe()
	p := start(t, r, append([]string{"chat"}, args...)...)
	go func() {
		<-p.done
		r.CloseWithError(io.ErrClosedPipe)
	}()
	t.Cleanup(func() { w.Close() })
	return p, w
}

// hasEvent waits up to d for o to hold an event for which match is true.
func (o *output) hasEvent(t testing.TB, d time.Duration, match func(map[string]any) bool) bool {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		o.mu.Lock()
		ch := o.changed
		o.mu.Unlock()
		if slices.ContainsFunc(o.events(t), match) {
			return true
		}
		select {
		case <-ch:
		case <-timeout.C:
			return false
		}
	}
}

// hasLine is hasEvent for the readable output: a line equal to want.
func (o *output) hasLine(d time.Duration, want string) bool {
	deadline := time.Now().Add(d)
	for {
		o.mu.Lock()
		ch := o.changed
		o.mu.Unlock()
		if slices.Contains(o.lines(), want) {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		select {
		case <-ch:
		case <-time.After(left):
		}
	}
}

// deliver writes line to w until arrived reports it arrived.
func deliver(t *testing.T, w io.Writer, line string, arrived func() bool) {
	t.Helper()
	for try := 0; try < datagramTries; try++ {
		if try > 0 {
			t.Logf("datagram %q not seen within %v: sending it again", line, datagramWait)
		}
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			t.Fatalf("writing %q to chat: %v (chat ended?)", line, err)
		}
		if arrived() {
			return
		}
	}
	t.Fatalf("datagram %q did not arrive in %d tries of %v", line, datagramTries, datagramWait)
}

func isDatagram(from, text string) func(map[string]any) bool {
	return func(e map[string]any) bool {
		return e["event"] == "datagram" && e["name"] == from && e["text"] == text
	}
}

// TestChatDatagram: chat --datagram sends each line as a datagram; listen
// prints datagram events with the sender's name and peer ID, and no
// message; chat exits 0 after stdin ends.
func TestChatDatagram(t *testing.T) {
	t.Parallel()
	svc, key := service(t), keyFile(t)
	l := listen(t, svc, "dgram-srv", "--key-file", key)
	c, w := chatPipe(t, "--json", "--datagram", "--key-file", key, "--name", "dgram-chat", "--to", l.addr())
	c.stdout.waitEvent(t, "chat's connected event", isEvent("connected"))
	lines := []string{"first datagram", "ünïcode ✓", "", "  spaces  ", "last"}
	for _, line := range lines {
		deliver(t, w, line, func() bool { return l.stdout.hasEvent(t, datagramWait, isDatagram("dgram-chat", line)) })
	}
	w.Close()
	if err := c.wait(t); err != nil {
		t.Fatalf("chat --datagram: %v; want exit 0 after stdin ends", err)
	}

	conn := l.stdout.waitEvent(t, "the listener's connected event", isEvent("connected"))
	var texts []string
	for _, e := range l.stdout.events(t) {
		if e["event"] != "datagram" {
			continue
		}
		if e["name"] != "dgram-chat" || e["peer"] != conn["peer"] || len(e["peer"].(string)) != 32 {
			t.Errorf("datagram event %v; want name dgram-chat and peer %v", e, conn["peer"])
		}
		texts = append(texts, e["text"].(string))
	}
	for _, text := range texts {
		if !slices.Contains(lines, text) {
			t.Errorf("listener printed datagram %q, which chat never sent", text)
		}
	}
	if got := messagesFrom(t, l.stdout, "dgram-chat"); len(got) > 0 {
		t.Errorf("listener got messages %q from chat --datagram; want datagrams only", got)
	}
}

// TestDatagramEcho: listen --echo sends datagrams back as datagrams, and
// chat prints them, readable and marked as datagrams (security mode none:
// plaintext datagrams).
func TestDatagramEcho(t *testing.T) {
	t.Parallel()
	l := listen(t, service(t), "dgram-echo", "--insecure", "--echo")
	c, w := chatPipe(t, "--datagram", "--insecure", "--name", "caller", "--to", l.addr())
	for _, text := range []string{"ping", "pong \x1b[2J ✓"} {
		want := "<dgram-echo> (datagram) " + clean(text)
		deliver(t, w, text, func() bool { return c.stdout.hasLine(datagramWait, want) })
	}
	w.Close()
	if err := c.wait(t); err != nil {
		t.Fatalf("chat: %v; want success after stdin ends", err)
	}
	if strings.Contains(c.stdout.String(), "<dgram-echo> ping") {
		t.Errorf("chat printed the echo as a message:\n%s", c.stdout)
	}
	l.stdout.waitEvent(t, "the listener's datagram event", isDatagram("caller", "ping"))
}

// TestDatagramTooLarge: a line longer than the largest datagram ends chat
// with an error naming the line, its size and the limit.
func TestDatagramTooLarge(t *testing.T) {
	t.Parallel()
	key := keyFile(t)
	l := listen(t, service(t), "dgram-big", "--key-file", key)
	const size = 70_000 // more than any UDP datagram carries
	stdin := "fits\n" + strings.Repeat("x", size) + "\nnever sent\n"
	_, _, err := run(t, strings.NewReader(stdin), "chat", "--datagram", "--key-file", key, "--to", l.addr())
	if err == nil || ExitCode(err) != 1 {
		t.Fatalf("chat --datagram with a %d-byte line: %v; want an error (exit 1)", size, err)
	}
	m := regexp.MustCompile(`line 2 not sent: it is 70000 bytes, more than the ([0-9]+) bytes a datagram to dgram-big can carry`).
		FindStringSubmatch(err.Error())
	if m == nil || !strings.Contains(err.Error(), "without --datagram") {
		t.Fatalf("error %q; want it to name the line, its size, the limit and the way out", err)
	}
	if limit, _ := strconv.Atoi(m[1]); limit < 1200 || limit >= size {
		t.Errorf("error %q: limit %d; want the path's datagram limit", err, limit)
	}
	t.Logf("error: %v", err)
	if l.stdout.hasEvent(t, 200*time.Millisecond, func(e map[string]any) bool { return e["text"] == "never sent" }) {
		t.Errorf("the line after the failing one was sent")
	}
}
