//go:build linux

package cli

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/proxytest"
)

// acceptor is a TCP listener on 127.0.0.1 that accepts and closes every
// connection until the test ends.
func acceptor(t *testing.T) (addr string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// TestProxyRank: a tinyproxy that may connect to the target ranks first,
// with a latency; a proxy on a closed port is reported as a failure, with
// its password redacted.
func TestProxyRank(t *testing.T) {
	t.Parallel()
	target, port := acceptor(t)
	good := proxytest.URL("http", proxyPass, proxytest.Tinyproxy(t, proxyUser, proxyPass, port))
	down := proxytest.URL("socks5", proxyPass, "127.0.0.1:"+strconv.Itoa(proxytest.FreePort(t)))

	t.Run("json", func(t *testing.T) {
		out, stderr, err := run(t, nil, "proxy-rank", "--json", "--target", target, "--timeout", "10s", down, good)
		if err != nil {
			t.Fatalf("proxy-rank: %v\nstderr:\n%s", err, stderr)
		}
		evs := out.events(t)
		if len(evs) != 2 {
			t.Fatalf("got %d events; want 2:\n%s", len(evs), out)
		}
		first, second := evs[0], evs[1]
		if first["event"] != "proxy" || first["error"] != "" || first["latency_ms"].(float64) <= 0 ||
			!strings.Contains(first["proxy"].(string), "127.0.0.1") || strings.Contains(first["proxy"].(string), proxyPass) {
			t.Errorf("first event %v; want the tinyproxy, usable, with a latency and no password", first)
		}
		errText, _ := second["error"].(string)
		if second["event"] != "proxy" || second["latency_ms"].(float64) != 0 || !strings.Contains(errText, "cannot reach proxy") ||
			!strings.HasPrefix(second["proxy"].(string), "socks5://") {
			t.Errorf("second event %v; want the closed port, failed as unreachable", second)
		}
		if strings.Contains(out.String(), proxyPass) || strings.Contains(stderr.String(), proxyPass) {
			t.Errorf("output shows the password:\n%s%s", out, stderr)
		}
	})
	t.Run("text", func(t *testing.T) {
		out, _, err := run(t, nil, "proxy-rank", "--target", target, "--concurrency", "1", good, down)
		lines := out.lines()
		if err != nil || len(lines) != 2 || !strings.HasSuffix(lines[0], "ms  "+strings.Replace(good, proxyPass, "xxxxx", 1)) ||
			!strings.HasPrefix(lines[1], "failed") || strings.Contains(out.String(), proxyPass) {
			t.Errorf("proxy-rank = %q, %v; want the tinyproxy with its latency, then the failure, no password", lines, err)
		}
	})
	t.Run("none usable", func(t *testing.T) {
		_, _, err := run(t, nil, "proxy-rank", "--target", target, down)
		if ExitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "no proxy could connect") {
			t.Errorf("proxy-rank with no usable proxy: %v; want exit 1 saying none could connect", err)
		}
	})
}

// TestChatThroughProxy: chat --to host:port --proxy reaches a listener on
// 127.0.0.1 through tinyproxy and every line arrives; a wrong password ends
// chat with an error saying the proxy rejected the credentials, without
// the password.
func TestChatThroughProxy(t *testing.T) {
	t.Parallel()
	svc, key := service(t), keyFile(t)
	l := listen(t, svc, "srv", "--key-file", key)
	tp := proxytest.Tinyproxy(t, proxyUser, proxyPass, l.port)
	lines := []string{"one", "two through the proxy", "three"}
	out, stderr, err := run(t, strings.NewReader(strings.Join(lines, "\n")+"\n"), "chat", "--json", "--service", svc,
		"--key-file", key, "--name", "via-proxy", "--to", l.addr(), "--proxy", proxytest.URL("http", proxyPass, tp))
	if err != nil {
		t.Fatalf("chat --proxy: %v\nstderr:\n%s", err, stderr)
	}
	l.stdout.waitEvent(t, "the last message", func(e map[string]any) bool {
		return e["event"] == "message" && e["name"] == "via-proxy" && e["text"] == "three"
	})
	if got := messagesFrom(t, l.stdout, "via-proxy"); !slices.Equal(got, lines) {
		t.Fatalf("listener got %q; want %q", got, lines)
	}
	out.waitEvent(t, "chat's connected event", isEvent("connected"))

	wrong := "wrong-Pw"
	_, stderr, err = run(t, strings.NewReader("x\n"), "chat", "--service", svc, "--key-file", key,
		"--to", l.addr(), "--proxy", proxytest.URL("http", wrong, tp))
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "rejected the credentials") {
		t.Errorf("chat with a wrong proxy password: %v; want exit 1 saying the proxy rejected the credentials", err)
	}
	if err != nil && strings.Contains(err.Error(), wrong) || strings.Contains(stderr.String(), wrong) {
		t.Errorf("chat with a wrong proxy password shows it: %v\n%s", err, stderr)
	}
}
