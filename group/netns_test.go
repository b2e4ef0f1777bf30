//go:build linux

package group

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/security"
)

// ghelper is a helper process running several members (helperMain).
type ghelper struct {
	*netns.Proc
	host *netns.Host
	next map[string]int // per line prefix, the first stdout line no wait for it has passed: lines of different kinds come in any order
	ids  []nearnet.PeerID
}

func startGroupHelper(t *testing.T, h *netns.Host, key security.Key, n int) *ghelper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(context.Background(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "NN_KEY="+key.String(), "NN_GROUP=big",
		fmt.Sprintf("NN_START=%d", n), "NN_MESHLIMIT=8")
	p := &ghelper{Proc: netns.StartCmd(t, cmd), host: h, next: map[string]int{}}
	t.Cleanup(func() {
		p.CloseStdin()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if p.Wait(ctx); ctx.Err() != nil {
			kctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			p.Stop(kctx)
		}
	})
	p.cmd(t, fmt.Sprintf("start %d", n))
	return p
}

func (p *ghelper) cmd(t *testing.T, line string) {
	t.Helper()
	if err := p.WriteLine(line); err != nil {
		t.Fatal(err)
	}
}

// wait returns the next line starting with prefix, failing the test on a
// VIOLATION or an error line.
func (p *ghelper) wait(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, i, err := p.WaitLineFrom(ctx, p.next[prefix], func(l string) bool {
		return strings.HasPrefix(l, prefix) || strings.HasPrefix(l, "VIOLATION") || strings.HasPrefix(l, "ERR")
	})
	if err != nil {
		t.Fatalf("%s: no %q within %v: %v", p.host.Name, prefix, timeout, err)
	}
	p.next[prefix] = i + 1
	if !strings.HasPrefix(line, prefix) || strings.Contains(line, " err ") {
		t.Fatalf("%s: %s", p.host.Name, line)
	}
	if prefix == "ID " {
		var idx int
		var s string
		fmt.Sscanf(line, "ID %d %s", &idx, &s)
		id, _ := nearnet.ParsePeerID(s)
		for len(p.ids) <= idx {
			p.ids = append(p.ids, nearnet.PeerID{})
		}
		p.ids[idx] = id
	}
	return line
}

func (p *ghelper) started(t *testing.T, n int) {
	t.Helper()
	for range n {
		p.wait(t, "ID ", 60*time.Second)
	}
	p.wait(t, "STARTED", 60*time.Second)
}

// expectAll has every helper check that its original members still present
// have want of each sender's messages.
func expectAll(t *testing.T, hs []*ghelper, want map[nearnet.PeerID]int) {
	t.Helper()
	var kv []string
	for id, n := range want {
		kv = append(kv, fmt.Sprintf("%s=%d", id, n))
	}
	for _, h := range hs {
		h.cmd(t, "expect "+strings.Join(kv, ","))
	}
	for _, h := range hs {
		h.wait(t, "EXPECT", 90*time.Second)
	}
}

// Sixty-four members on four hosts of one bridge (sixteen per process,
// one of them browsing over mDNS, the others joining through it): all reach
// full membership, and broadcasts from eight senders reach everyone in
// order, once. Then churn (ten leave, ten join during a storm of
// broadcasts), a host cut off for two seconds, and a host killed: the
// members that stay miss nothing.
func TestGroup64(t *testing.T) {
	lab := netns.New(t, "h1", "h2", "h3", "h4")
	key, err := security.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const per = 16
	began := time.Now()
	var hs []*ghelper
	for _, h := range lab.Hosts() {
		hs = append(hs, startGroupHelper(t, h, key, per))
	}
	for _, h := range hs {
		h.started(t, per)
	}
	t.Logf("64 members started after %v", time.Since(began).Round(time.Millisecond))
	for _, h := range hs {
		h.cmd(t, "members 64")
	}
	for _, h := range hs {
		h.wait(t, "MEMBERS", 90*time.Second)
	}
	t.Logf("64 members in full membership after %v", time.Since(began).Round(time.Millisecond))

	// Eight senders, two per host, 13 messages each: 104 broadcasts.
	sent := map[nearnet.PeerID]int{}
	send := func(count, gap int) {
		for _, h := range hs {
			for _, idx := range []int{1, 2} {
				h.cmd(t, fmt.Sprintf("send %d %d %d", idx, count, gap))
				sent[h.ids[idx]] += count
			}
		}
	}
	began = time.Now()
	send(13, 0)
	for _, h := range hs {
		h.wait(t, "SENT", 60*time.Second)
		h.wait(t, "SENT", 60*time.Second)
	}
	expectAll(t, hs, sent)
	t.Logf("104 broadcasts from 8 senders delivered to all 64 in %v", time.Since(began).Round(time.Millisecond))
	for _, h := range hs {
		h.cmd(t, "stats")
		t.Logf("%s: %s", h.host.Name, h.wait(t, "STATS", 10*time.Second))
	}

	t.Run("churn", func(t *testing.T) {
		// A storm: every sender sends 60 messages 50 ms apart while ten
		// members leave (members 10 to 12 or 11 of each host) and ten join.
		send(60, 50)
		leaving := map[*ghelper][]int{hs[0]: {10, 11, 12}, hs[1]: {10, 11, 12}, hs[2]: {10, 11}, hs[3]: {10, 11}}
		for _, h := range hs {
			for _, idx := range leaving[h] {
				h.cmd(t, fmt.Sprintf("leave %d", idx))
			}
			h.cmd(t, fmt.Sprintf("start %d", len(leaving[h])))
		}
		for _, h := range hs {
			for range leaving[h] {
				h.wait(t, "LEFT", 30*time.Second)
			}
			h.started(t, len(leaving[h]))
		}
		for _, h := range hs {
			h.wait(t, "SENT", 60*time.Second)
			h.wait(t, "SENT", 60*time.Second)
		}
		expectAll(t, hs, sent)
		for _, h := range hs {
			h.cmd(t, "members 64")
		}
		for _, h := range hs {
			h.wait(t, "MEMBERS", 60*time.Second)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("cut", func(t *testing.T) {
		// Host 4 is cut off for 2 s while the others broadcast.
		if err := hs[3].host.LinkDown(); err != nil {
			t.Fatal(err)
		}
		for _, h := range hs[:3] {
			h.cmd(t, "send 1 20 0")
			sent[h.ids[1]] += 20
		}
		for _, h := range hs[:3] {
			h.wait(t, "SENT", 30*time.Second)
		}
		time.Sleep(2 * time.Second)
		if err := hs[3].host.LinkUp(); err != nil {
			t.Fatal(err)
		}
		expectAll(t, hs, sent)
	})
	if t.Failed() {
		return
	}

	t.Run("kill", func(t *testing.T) {
		// Host 3's process dies with its sixteen members (among them the
		// most connected and the one that browses there): the others carry on.
		hs[2].Signal(syscall.SIGKILL)
		for _, h := range []*ghelper{hs[0], hs[1], hs[3]} {
			h.cmd(t, "send 2 20 10")
			sent[h.ids[2]] += 20
		}
		delete(sent, hs[2].ids[1])
		delete(sent, hs[2].ids[2])
		rest := []*ghelper{hs[0], hs[1], hs[3]}
		for _, h := range rest {
			h.wait(t, "SENT", 60*time.Second)
		}
		expectAll(t, rest, sent)
		for _, h := range rest {
			h.cmd(t, "members 48")
		}
		for _, h := range rest {
			h.wait(t, "MEMBERS", 60*time.Second)
		}
	})
	_ = exec.Command
}
