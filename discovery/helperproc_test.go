//go:build linux

package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
)

// helper is a running helper process (see helperMain): a [netns.Proc] read
// like a pipe, each wait starting after the line the last one returned. When
// the test fails, netns logs everything it printed.
type helper struct {
	*netns.Proc
	next int // index of the first stdout line no wait has passed yet
}

// startHelper runs the test binary as a helper with env added to its
// environment, in lab host h, or in the test's own network namespace when h
// is nil. At the end of the test its stdin is closed so that it exits by
// itself, as stop does.
func startHelper(t testing.TB, h *netns.Host, env ...string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if h == nil {
		cmd = exec.Command(exe, "-test.run=^$")
	} else {
		cmd = h.Command(context.Background(), exe, "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), env...)
	p := &helper{Proc: netns.StartCmd(t, cmd)}
	// Registered after StartCmd's cleanup, so it runs before netns kills
	// what is left.
	t.Cleanup(p.stop)
	return p
}

// stop closes the helper's stdin and waits, for up to 10 seconds, for it to
// exit; then it is killed.
func (h *helper) stop() {
	h.CloseStdin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h.Wait(ctx); ctx.Err() != nil {
		killCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h.Stop(killCtx)
	}
}

// send writes one command line to the helper's stdin.
func (h *helper) send(t testing.TB, line string) {
	t.Helper()
	if err := h.WriteLine(line); err != nil {
		t.Fatal(err)
	}
}

// output returns every line the helper printed so far.
func (h *helper) output() []string { return h.Lines() }

// wait returns the next output line for which match is true, waiting up to
// timeout; what names it in the failure.
func (h *helper) wait(t testing.TB, timeout time.Duration, what string, match func(string) bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, i, err := h.WaitLineFrom(ctx, h.next, match)
	if err != nil {
		t.Fatalf("helper printed no %s within %v: %v", what, timeout, err)
	}
	h.next = i + 1
	return line
}

// waitLine returns the next output line with the given prefix.
func (h *helper) waitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	return h.wait(t, timeout, fmt.Sprintf("line starting with %q", prefix), func(l string) bool {
		return strings.HasPrefix(l, prefix)
	})
}

// waitEvent returns the next event a browsing helper prints for which match
// is true.
func (h *helper) waitEvent(t testing.TB, timeout time.Duration, match func(Event) bool) Event {
	t.Helper()
	var ev Event
	h.wait(t, timeout, "matching event", func(l string) bool {
		ev = Event{}
		return json.Unmarshal([]byte(l), &ev) == nil && match(ev)
	})
	return ev
}

// A responder in another process on the same host (sharing port 5353) is
// found, and a browser in another process finds ours.
func TestAcrossProcesses(t *testing.T) {
	typ := testType(t)
	h := startHelper(t, nil, helperEnv+"=respond", "NN_IFACES=lo", "NN_TYPE="+typ, "NN_INSTANCE=Remote", "NN_PORT=777", "NN_TXT=p=1")
	h.waitLine(t, "REGISTERED", 10*time.Second)
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	if s := ev.wait(t, Found, "Remote", 5*time.Second).Service; s.Port != 777 || s.TXT["p"] != "1" {
		t.Errorf("found %+v", s)
	}

	r := mustResponder(t, loConfig(t))
	register(t, r, Service{Instance: "Local", Type: typ, Port: 778})
	hb := startHelper(t, nil, helperEnv+"=browse", "NN_IFACES=lo", "NN_TYPE="+typ)
	got := hb.waitEvent(t, 5*time.Second, func(ev Event) bool { return ev.Kind == Found && ev.Service.Instance == "Local" })
	if got.Service.Port != 778 {
		t.Errorf("helper found %+v", got.Service)
	}
}
