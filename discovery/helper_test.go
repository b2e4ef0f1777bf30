package discovery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The test binary doubles as a helper process, so tests can run a
// responder or a browser in another process or network namespace:
// TestMain calls helperMain when helperEnv is set. Settings come from
// environment variables:
//
//	NEARNET_DISCOVERY_HELPER  "respond" or "browse"
//	NN_IFACES                 comma-separated interface names (empty: default selection)
//	NN_TYPE, NN_INSTANCE, NN_PORT, NN_TXT ("k=v;k=v")
//
// A responder prints "REGISTERED <instance>" once registered, then obeys
// stdin lines "reannounce" and "settxt k=v;k=v" (answering "OK"); a browser
// prints one JSON Event per line; both run until stdin is closed. Role
// "qu" sends one QU query for NN_TYPE's PTR from port 5353 and prints
// "UNICAST" or "MULTICAST" for the first answer, or "NONE".
const helperEnv = "NEARNET_DISCOVERY_HELPER"

func helperMain() int {
	var ifaces []string
	if s := os.Getenv("NN_IFACES"); s != "" {
		ifaces = strings.Split(s, ",")
	}
	cfg := Config{Interfaces: ifaces}
	typ := os.Getenv("NN_TYPE")
	stdinClosed := make(chan struct{})
	commands := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			commands <- sc.Text()
		}
		close(stdinClosed)
	}()
	var out sync.Mutex
	println := func(s string) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintln(os.Stdout, s)
	}
	switch os.Getenv(helperEnv) {
	case "respond":
		r, err := NewResponder(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer r.Close()
		port, _ := strconv.Atoi(os.Getenv("NN_PORT"))
		txt := parseTXTArg(os.Getenv("NN_TXT"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		reg, err := r.Register(ctx, Service{Instance: os.Getenv("NN_INSTANCE"), Type: typ, Port: port, TXT: txt})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		println("REGISTERED " + reg.Service().Instance)
		for {
			select {
			case <-stdinClosed:
				return 0
			case c := <-commands:
				var err error
				switch {
				case c == "reannounce":
					err = r.Reannounce()
				case strings.HasPrefix(c, "settxt "):
					err = reg.SetTXT(parseTXTArg(strings.TrimPrefix(c, "settxt ")))
				}
				if err != nil {
					println("ERROR " + err.Error())
				} else {
					println("OK")
				}
			case <-time.After(2 * time.Minute):
				return 0
			}
		}
	case "qu":
		println(quQuery(cfg, typ))
		return 0
	case "browse":
		b, err := NewBrowser(cfg, typ, func(ev Event) {
			j, _ := json.Marshal(ev)
			println(string(j))
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer b.Close()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper role")
		return 2
	}
	select {
	case <-stdinClosed:
	case <-time.After(2 * time.Minute): // never outlive a stuck test
	}
	return 0
}

func parseTXTArg(s string) map[string]string {
	txt := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			txt[k] = v
		}
	}
	return txt
}

// quQuery asks for typ's PTR with the unicast-response bit from port 5353
// and reports how the first answer arrived.
func quQuery(cfg Config, typ string) string {
	links, err := resolveLinks(cfg.Interfaces)
	if err != nil {
		return "ERROR " + err.Error()
	}
	c, err := openConn(links, mdnsPort, cfg.logger(), &counters{})
	if err != nil {
		return "ERROR " + err.Error()
	}
	defer c.close()
	m := new(dns.Msg)
	m.Question = []dns.Question{{Name: typ + ".local.", Qtype: dns.TypePTR, Qclass: dns.ClassINET | classUnicast}}
	b, _ := m.Pack()
	if err := c.sendMulticast(links[0], b); err != nil {
		return "ERROR " + err.Error()
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(3 * time.Second)
	_ = c.pc.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		n, cm, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			break
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) != nil || !r.Response || len(r.Answer) == 0 {
			continue
		}
		if cm != nil && cm.Dst != nil && !cm.Dst.IsMulticast() {
			return "UNICAST"
		}
		return "MULTICAST"
	}
	return "NONE"
}

// send writes one command line to the helper's stdin.
func (h *helper) send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}

	mu  sync.Mutex
	all []string // every line printed
}

// output returns every line the helper printed so far.
func (h *helper) output() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.all...)
}

// startHelper runs the test binary as a helper, optionally prefixed by a
// command such as "ip netns exec NS". It is stopped at test cleanup.
func startHelper(t testing.TB, prefix []string, env ...string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, prefix...), exe, "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = tWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, lines: make(chan string, 256), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.mu.Lock()
			h.all = append(h.all, sc.Text())
			h.mu.Unlock()
			select {
			case h.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop closes the helper's stdin and waits for it to exit.
func (h *helper) stop(t testing.TB) {
	h.stdin.Close()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
	h.cmd.Wait()
}

// waitLine returns the first output line with the given prefix.
func (h *helper) waitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-h.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-h.done:
			t.Fatalf("helper exited before printing %q", prefix)
		case <-deadline:
			t.Fatalf("helper printed no %q within %v", prefix, timeout)
		}
	}
}

// waitEvent returns the first event a browsing helper prints for which
// match is true.
func (h *helper) waitEvent(t testing.TB, timeout time.Duration, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-h.lines:
			var ev Event
			if json.Unmarshal([]byte(l), &ev) == nil && match(ev) {
				return ev
			}
		case <-h.done:
			t.Fatal("helper exited before the expected event")
		case <-deadline:
			t.Fatalf("no matching event from helper within %v; it printed:\n%s", timeout, strings.Join(h.output(), "\n"))
		}
	}
}
