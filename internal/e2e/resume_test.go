package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
)

// Session resume through the CLI (issue #5): link cuts, an address change,
// killed peers and a dialer that starts first, with the real binary in
// namespace hosts. Small --keepalive, --drop-time and --resume-window keep
// the tests short; every wait is a deadline for a hang (waitTimeout), not a
// performance threshold.

// quick are the resume flags of most of these tests: a silent link is
// inviable after a few 200 ms pings and its transport dropped after 1 s.
var quick = []string{"--keepalive", "200ms", "--drop-time", "1s"}

// resumeEvent is a line of --json output with the fields these tests read.
type resumeEvent struct {
	Event       string   `json:"event"`
	Name        string   `json:"name"`
	Peer        string   `json:"peer"`
	Text        string   `json:"text"`
	Reason      string   `json:"reason"`
	Addr        string   `json:"addr"`
	Addrs       []string `json:"addrs"`
	Undelivered []string `json:"undelivered"`
}

// resumeEvents returns p's events so far, in order.
func resumeEvents(p *netns.Proc) []resumeEvent { return netns.JSONLines[resumeEvent](p) }

// numbered returns count lines prefix-001, prefix-002, ...
func numbered(prefix string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i+1)
	}
	return out
}

// feed writes lines to p's stdin, one every gap, on its own goroutine; the
// returned function waits for it and reports a write error.
func feed(p *netns.Proc, lines []string, gap time.Duration) func() error {
	done := make(chan error, 1)
	go func() {
		for _, l := range lines {
			if err := p.WriteLine(l); err != nil {
				done <- fmt.Errorf("write to %s: %w", p, err)
				return
			}
			time.Sleep(gap)
		}
		done <- nil
	}()
	return func() error { return <-done }
}

// fdCount returns how many file descriptors p's process holds. The
// process started by Host.Command execs its way (ip netns exec, unshare,
// sh) to nearnet, so the PID is nearnet's; that is checked.
func fdCount(t testing.TB, p *netns.Proc) int {
	t.Helper()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Pid()))
	if err != nil || strings.TrimSpace(string(comm)) != "nearnet" {
		t.Fatalf("%s: /proc/%d/comm = %q, %v; want nearnet", p, p.Pid(), comm, err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// fdSlack is how many more descriptors a process may hold after a blip than
// before it: a socket being closed or a DNS-SD query in flight, not one per
// reconnection.
const fdSlack = 3

func checkFDs(t testing.TB, p *netns.Proc, before int) {
	t.Helper()
	if after := fdCount(t, p); after > before+fdSlack {
		t.Errorf("%s holds %d file descriptors after the blip, %d before: leaked", p, after, before)
	}
}

// checkViabilityCycle waits until p has reported the connection to peer
// inviable and, after that, viable or reconnected (reports are debounced,
// so they may trail the messages).
func checkViabilityCycle(t testing.TB, p *netns.Proc, peer string) {
	t.Helper()
	down := false
	waitEvent(t, p, "inviable, then viable or reconnected, for peer "+peer, func(e resumeEvent) bool {
		if e.Peer != peer {
			return false
		}
		if e.Event == "inviable" {
			down = true
		}
		return down && (e.Event == "viable" || e.Event == "reconnected")
	})
}

// checkExactly checks that p printed the messages from sender exactly as
// want: each once, in order.
func checkExactly(t testing.TB, p *netns.Proc, from string, want []string) {
	t.Helper()
	waitEvent(t, p, fmt.Sprintf("message %q from %s", want[len(want)-1], from), func(e resumeEvent) bool {
		return e.Event == "message" && e.Name == from && e.Text == want[len(want)-1]
	})
	if got := messages(p, from); !slices.Equal(got, want) {
		t.Errorf("%s: %d messages from %s, want %d exactly once in order; got %q", p, len(got), from, len(want), got)
	}
}

// exitZero closes p's stdin (or signals it) and checks that it exits 0.
func exitZero(t testing.TB, p *netns.Proc, sig syscall.Signal) {
	t.Helper()
	if sig == 0 {
		if err := p.CloseStdin(); err != nil {
			t.Fatal(err)
		}
	} else if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, p); err != nil {
		t.Errorf("%s: %v; want exit 0", p, err)
	}
}

// A 2 s cut of the dialer's link while 200 numbered lines flow each way,
// once with a drop time shorter than the cut and once longer:
// every line arrives exactly once and in order, both sides see the
// connection go inviable and come back, the processes hold no more file
// descriptors than before and exit 0 when stdin ends.
func TestLinkCutResumes(t *testing.T) {
	t.Parallel()
	cli(t)
	// With --drop-time 1s the transport goes during the cut and the
	// session resumes on a new one; with 10s it survives the cut.
	for _, drop := range []string{"1s", "10s"} {
		t.Run("drop-time "+drop, func(t *testing.T) {
			t.Parallel()
			testLinkCut(t, "--keepalive", "200ms", "--drop-time", drop)
		})
	}
}

func testLinkCut(t *testing.T, timing ...string) {
	a, b, flags := twoHosts(t, "30s", timing...)
	ca := chat(t, a, "a", flags...) // listens; b dials it
	ready := waitEvent(t, ca, "a's ready event", func(e resumeEvent) bool { return e.Event == "ready" })
	cb := chatConnected(t, b, "b", append(flags, "--to", "a")...)
	waitEvent(t, ca, "a connected", func(e resumeEvent) bool { return e.Event == "connected" })
	fdA, fdB := fdCount(t, ca), fdCount(t, cb)

	linesA, linesB := numbered("a", 200), numbered("b", 200)
	doneA, doneB := feed(ca, linesA, 20*time.Millisecond), feed(cb, linesB, 20*time.Millisecond)
	time.Sleep(time.Second) // messages flow, then the cut
	if err := b.LinkDown(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := b.LinkUp(); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(doneA(), doneB()); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, ca, "b", linesB)
	checkExactly(t, cb, "a", linesA)
	peerB := waitEvent(t, ca, "b's peer ID", func(e resumeEvent) bool { return e.Event == "connected" }).Peer
	checkViabilityCycle(t, ca, peerB)
	checkViabilityCycle(t, cb, ready.Peer)
	checkFDs(t, ca, fdA)
	checkFDs(t, cb, fdB)
	for _, p := range []*netns.Proc{ca, cb} {
		if d := events(p, isEvent("disconnected")); len(d) > 0 {
			t.Errorf("%s: disconnected during the blip: %s", p, d[0])
		}
	}
	exitZero(t, cb, 0)
	exitZero(t, ca, 0)
}

// A cut longer than --resume-window: the connection fails with a reason
// that says so, and each side's disconnected event lists the lines that
// were not delivered; the dialing chat exits non-zero.
func TestCutBeyondResumeWindow(t *testing.T) {
	t.Parallel()
	cli(t)
	a, b, flags := twoHosts(t, "2s", quick...)
	ca := chat(t, a, "a", flags...)
	waitEvent(t, ca, "a's ready event", func(e resumeEvent) bool { return e.Event == "ready" })
	cb := chat(t, b, "b", append(flags, "--to", "a")...)
	before := []string{"before 1", "before 2"}
	for _, l := range before {
		if err := cb.WriteLine(l); err != nil {
			t.Fatal(err)
		}
		if err := ca.WriteLine(l); err != nil {
			t.Fatal(err)
		}
	}
	waitMessages(t, ca, "b", before)
	waitMessages(t, cb, "a", before)

	if err := b.LinkDown(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.LinkUp() })
	during := []string{"during 1", "during 2", "during 3"}
	for _, l := range during {
		if err := cb.WriteLine(l); err != nil {
			t.Fatal(err)
		}
		if err := ca.WriteLine(l); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*netns.Proc{ca, cb} {
		d := waitEvent(t, p, p.String()+" disconnected", func(e resumeEvent) bool { return e.Event == "disconnected" })
		if !strings.Contains(d.Reason, "not resumed") || !strings.Contains(d.Reason, "2s") {
			t.Errorf("%s: disconnected reason %q; want it to say the connection was not resumed within 2s", p, d.Reason)
		}
		// The lines typed during the cut are undelivered, in order, at
		// the end; a line acknowledged late may precede them.
		if !undeliveredOK(d.Undelivered, before, during) {
			t.Errorf("%s: undelivered %q; want %q, possibly after a suffix of %q", p, d.Undelivered, during, before)
		}
		if got := messages(p, map[*netns.Proc]string{ca: "b", cb: "a"}[p]); !slices.Equal(got, before) {
			t.Errorf("%s: received %q; want %q", p, got, before)
		}
	}
	err := waitExit(t, cb)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || !strings.Contains(cb.Stderr(), "not delivered") {
		t.Errorf("chat --to: %v, stderr %q; want a failure naming the undelivered messages", err, cb.Stderr())
	}
	exitZero(t, ca, 0) // the listening chat goes on without peers until stdin ends
}

// undeliveredOK reports whether got is a suffix of before followed by all
// of during.
func undeliveredOK(got, before, during []string) bool {
	if len(got) < len(during) || !slices.Equal(got[len(got)-len(during):], during) {
		return false
	}
	head := got[:len(got)-len(during)]
	return len(head) <= len(before) && slices.Equal(head, before[len(before)-len(head):])
}

// The listener's host moves to another address: a browser sees the
// advertisement updated, the dialer (which browses) reconnects to the new
// address, and lines sent around the change arrive exactly once, in order.
func TestAddressChange(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b", "c")
	a, b, c := lab.Host("a"), lab.Host("b"), lab.Host("c")
	key := keyFile(t, a)
	flags := append([]string{"--key-file", key, "--resume-window", "30s"}, quick...)
	la := listen(t, a, "a", flags...)
	browse := start(t, c, "browse", "--json", "--interface", "eth0", "--key-file", key)
	waitEvent(t, browse, "c finds a", func(e resumeEvent) bool { return e.Event == "found" && e.Name == "a" })
	cb := chat(t, b, "b", flags...) // star mode: browses, finds a, dials it
	waitEvent(t, cb, "b connected to a", func(e resumeEvent) bool {
		return e.Event == "connected" && e.Peer == la.ready.Peer
	})
	fdA, fdB := fdCount(t, la.Proc), fdCount(t, cb)
	lines := numbered("b", 20)
	for _, l := range lines[:10] {
		if err := cb.WriteLine(l); err != nil {
			t.Fatal(err)
		}
	}
	waitMessages(t, la.Proc, "b", lines[:10])

	moved := netip.MustParsePrefix("10.99.0.101/24")
	if err := a.SetAddr(moved); err != nil {
		t.Fatal(err)
	}
	for _, l := range lines[10:] {
		if err := cb.WriteLine(l); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, browse, "c sees a at "+moved.Addr().String(), func(e resumeEvent) bool {
		return e.Event == "updated" && e.Name == "a" && slices.Contains(e.Addrs, moved.Addr().String())
	})
	waitEvent(t, cb, "b reconnected", func(e resumeEvent) bool { return e.Event == "reconnected" })
	checkExactly(t, la.Proc, "b", lines)
	checkViabilityCycle(t, cb, la.ready.Peer)
	checkFDs(t, la.Proc, fdA)
	checkFDs(t, cb, fdB)
	exitZero(t, cb, 0)
	exitZero(t, la.Proc, syscall.SIGTERM)
	exitZero(t, browse, syscall.SIGTERM)
}

// SIGKILL ends a peer's process: its host resets the connection, and the
// other side reports it disconnected after at most --drop-time (1 s), not
// after --resume-window (60 s). That is asserted by the reason, which names
// the window that ran out or says the peer no longer listens, and by the
// deadline of the wait (30 s) being shorter than the resume window.
func TestKilledPeer(t *testing.T) {
	t.Parallel()
	cli(t)
	a, b, flags := twoHosts(t, "60s", quick...)
	la := listen(t, a, "a", flags...)

	t.Run("dialer killed", func(t *testing.T) {
		cb := chat(t, b, "b1", append(flags, "--to", "a")...)
		send1 := []string{"hello"}
		if err := cb.WriteLine(send1[0]); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, la.Proc, "b1", send1)
		if err := cb.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d := waitEvent(t, la.Proc, "a sees b1 disconnected", func(e resumeEvent) bool {
			return e.Event == "disconnected" && e.Name == "b1"
		})
		if !strings.Contains(d.Reason, "within 1s") {
			t.Errorf("disconnected reason %q; want the 1s drop time to have run out", d.Reason)
		}
	})

	t.Run("listener killed", func(t *testing.T) {
		cb := chat(t, b, "b2", append(flags, "--to", "a")...)
		waitEvent(t, cb, "b2 connected", func(e resumeEvent) bool { return e.Event == "connected" })
		if err := la.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d := waitEvent(t, cb, "b2 sees a disconnected", func(e resumeEvent) bool { return e.Event == "disconnected" })
		if !strings.Contains(d.Reason, "no longer listens") && !strings.Contains(d.Reason, "within 1s") {
			t.Errorf("disconnected reason %q; want the peer gone (refused) or the 1s drop time run out", d.Reason)
		}
		err := waitExit(t, cb)
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.Errorf("chat --to a after a was killed: %v; want a non-zero exit", err)
		}
	})
}

// A dialer started before its listener exists waits (--wait) and connects
// when the listener appears: by host:port (refused, retried) and by name
// (not found yet, browsed for). Lines typed while it waits arrive.
func TestDialerBeforeListener(t *testing.T) {
	t.Parallel()
	cli(t)
	a, b, flags := twoHosts(t, "", quick...)
	const port = 7777
	targets := map[string]string{
		"by host:port": netip.AddrPortFrom(a.Addr(), port).String(),
		"by name":      "a",
	}
	for _, sub := range []string{"by host:port", "by name"} {
		t.Run(sub, func(t *testing.T) {
			cb := chat(t, b, "b", append(flags, "--to", targets[sub], "--wait", "25s")...)
			early := []string{"typed before a existed", "second"}
			for _, l := range early {
				if err := cb.WriteLine(l); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(time.Second) // a few attempts fail first
			if _, done := cb.ExitCode(); done {
				t.Fatalf("chat --to %s gave up before the listener existed: %s", targets[sub], cb.Stderr())
			}
			la := listen(t, a, "a", append(flags, "--port", strconv.Itoa(port))...)
			waitMessages(t, la.Proc, "b", early)
			exitZero(t, cb, 0)
			exitZero(t, la.Proc, syscall.SIGTERM)
		})
	}
}

// Many short cuts in a row on a busy connection: the descriptor count of
// both processes stays flat (each cut makes the session resume on a new
// transport connection) and every line still arrives once, in order.
func TestRepeatedCutsNoLeak(t *testing.T) {
	t.Parallel()
	cli(t)
	a, b, flags := twoHosts(t, "30s", quick...)
	la := listen(t, a, "a", flags...)
	cb := chatConnected(t, b, "b", append(flags, "--to", "a")...)
	fdA, fdB := fdCount(t, la.Proc), fdCount(t, cb)
	lines := numbered("b", 300)
	done := feed(cb, lines, 20*time.Millisecond)
	const cuts = 3
	for i := 0; i < cuts; i++ {
		time.Sleep(500 * time.Millisecond)
		if err := b.LinkDown(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond) // beyond the drop time: the transport goes
		if err := b.LinkUp(); err != nil {
			t.Fatal(err)
		}
		want := i + 1
		waitEvent(t, cb, fmt.Sprintf("reconnected #%d", want), func(e resumeEvent) bool {
			n := 0
			for _, e := range resumeEvents(cb) {
				if e.Event == "reconnected" {
					n++
				}
			}
			return n >= want
		})
	}
	if err := done(); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, la.Proc, "b", lines)
	checkFDs(t, la.Proc, fdA)
	checkFDs(t, cb, fdB)
	exitZero(t, cb, 0)
	exitZero(t, la.Proc, syscall.SIGTERM)
}

// The listener moves while the dialer is a chat --to by name, which does
// not browse: its redial asks discovery where the peer went, reconnects to
// the new address, and the line sent meanwhile arrives once.
func TestAddressChangeDialerNotBrowsing(t *testing.T) {
	t.Parallel()
	cli(t)
	a, b, flags := twoHosts(t, "30s", quick...)
	if err := a.DisableIPv6(); err != nil { // else b redials a's unchanged link-local address
		t.Fatal(err)
	}
	la := listen(t, a, "a", flags...)
	cb := chatConnected(t, b, "b", append(flags, "--to", "a")...)
	fdB := fdCount(t, cb)
	moved := netip.MustParsePrefix("10.99.0.102/24")
	if err := a.SetAddr(moved); err != nil {
		t.Fatal(err)
	}
	if err := cb.WriteLine("sent while a moved"); err != nil {
		t.Fatal(err)
	}
	r := waitEvent(t, cb, "b reconnected", func(e resumeEvent) bool { return e.Event == "reconnected" })
	if want := netip.AddrPortFrom(moved.Addr(), uint16(la.ready.Port)).String(); r.Addr != want {
		t.Errorf("reconnected to %q; want %s", r.Addr, want)
	}
	checkExactly(t, la.Proc, "b", []string{"sent while a moved"})
	checkFDs(t, cb, fdB)
	exitZero(t, cb, 0)
	exitZero(t, la.Proc, syscall.SIGTERM)
}

// twoHosts makes hosts a and b in a lab of their own and the flags their
// commands share: a pre-shared key, --resume-window window (unless ""),
// then extra.
func twoHosts(t *testing.T, window string, extra ...string) (a, b *netns.Host, flags []string) {
	lab := netns.New(t, "a", "b")
	a, b = lab.Host("a"), lab.Host("b")
	flags = []string{"--key-file", keyFile(t, a)}
	if window != "" {
		flags = append(flags, "--resume-window", window)
	}
	return a, b, append(flags, extra...)
}

// chatConnected starts chat on h as name with args (which dial a peer) and
// waits for its connected event.
func chatConnected(t *testing.T, h *netns.Host, name string, args ...string) *netns.Proc {
	t.Helper()
	p := chat(t, h, name, args...)
	waitEvent(t, p, name+" connected", func(e resumeEvent) bool { return e.Event == "connected" })
	return p
}
