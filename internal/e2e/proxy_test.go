//go:build linux

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/proxytest"
)

// TestChatThroughProxies: `nearnet chat --to 127.0.0.1:P --proxy URL`
// reaches `nearnet listen --interface lo --port P` through a real tinyproxy
// (HTTP CONNECT with BasicAuth) and a real Dante (SOCKS5 with
// username/password), and every stdin line arrives; with a wrong password
// chat exits non-zero saying the proxy rejected the credentials, without
// the password.
//
// proxytest starts the proxies in the test's own network namespace, on
// 127.0.0.1, so the CLI runs there too rather than in a lab host: the
// listener binds loopback only and discovers on lo only, and chat --to
// does not discover at all.
func TestChatThroughProxies(t *testing.T) {
	t.Parallel()
	cli(t)
	key := keyHere(t)
	l, port := startOnPort(t, "listen", "the listener", "--key-file", key, "--name", "srv")
	target := "127.0.0.1:" + strconv.Itoa(port)

	for _, tc := range proxyCases {
		t.Run(tc.scheme, func(t *testing.T) {
			addr := tc.start(t, proxytest.User, proxytest.Password, port)
			from := "chat-" + tc.scheme
			lines := []string{"first line via " + tc.scheme, "second: ünïcode ✓", "third  with  spaces", "4"}
			p := startHere(t, "chat", "--json", "--key-file", key, "--name", from, "--to", target,
				"--proxy", proxytest.URL(tc.scheme, proxytest.Password, addr))
			send(t, p, lines...)
			if err := waitExit(t, p); err != nil {
				t.Fatalf("chat through %s: %v; want exit 0", tc.scheme, err)
			}
			waitMessages(t, l, from, lines)

			const wrong = "wrong-Pw"
			p = startHere(t, "chat", "--json", "--key-file", key, "--name", from+"-wrong", "--to", target,
				"--proxy", proxytest.URL(tc.scheme, wrong, addr))
			// chat fails before it reads stdin, and may have exited
			// already: a write could fail, so none is made.
			checkProxyRefused(t, p, "chat", tc, wrong)
			if got := messages(l, from+"-wrong"); len(got) > 0 {
				t.Errorf("listener got %q from the chat that the proxy refused", got)
			}
		})
	}
}

type proxyCase struct {
	scheme string
	start  func(t testing.TB, user, pass string, ports ...int) string // proxytest.Tinyproxy or Dante
	why    *regexp.Regexp                                             // what the CLI says when the proxy refuses the credentials
}

// proxyCases are the proxies the tests go through, and what the CLI says
// when one refuses the credentials.
var proxyCases = []proxyCase{
	{"http", proxytest.Tinyproxy, regexp.MustCompile(`proxy http://\S+ rejected the credentials \(HTTP 40[17]\)`)},
	{"socks5", proxytest.Dante, regexp.MustCompile(`proxy socks5://\S+ rejected the credentials`)},
}

// checkProxyRefused waits for p (what: its command), started with the
// password wrong through the proxy of tc, and checks that it exits
// non-zero saying the proxy refused, without showing any password.
func checkProxyRefused(t *testing.T, p *netns.Proc, what string, tc proxyCase, wrong string) {
	t.Helper()
	p.CloseStdin()
	err := waitExit(t, p)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("%s with a wrong %s proxy password: exit %v; want a non-zero exit status", what, tc.scheme, err)
	}
	t.Logf("%s with a wrong %s proxy password: %s", what, tc.scheme, p.Stderr())
	if !tc.why.MatchString(p.Stderr()) {
		t.Errorf("%s with a wrong %s proxy password: stderr %q; want it to match %s", what, tc.scheme, p.Stderr(), tc.why)
	}
	if out := p.Stdout() + p.Stderr(); strings.Contains(out, wrong) || strings.Contains(out, proxytest.Password) {
		t.Errorf("%s with a wrong %s proxy password shows a password:\n%s", what, tc.scheme, out)
	}
}

// startOnPort starts cmd (listen or receive) in the test's own namespace on
// a free port, discovering on lo only, with --json and extra, and waits for
// its ready event (who names it in a failure).
func startOnPort(t *testing.T, cmd, who string, extra ...string) (*netns.Proc, int) {
	t.Helper()
	port := proxytest.FreePort(t)
	p := startHere(t, append([]string{cmd, "--json", "--interface", "lo", "--port", strconv.Itoa(port)}, extra...)...)
	ready := waitEvent(t, p, who+"'s ready event", isEvent("ready"))
	if ready.Port != port {
		t.Fatalf("ready %s; want port %d", ready, port)
	}
	return p, port
}

// startHere starts the CLI with args in the test's own network namespace
// (see TestChatThroughProxies for why); like start, a process still
// running when the test ends is killed.
func startHere(t testing.TB, args ...string) *netns.Proc {
	t.Helper()
	cmd := exec.Command(cli(t), args...)
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	return netns.StartCmd(t, cmd)
}

// keyHere runs `nearnet keygen` and stores the key in a new file.
func keyHere(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli(t), "keygen").Output()
	if err != nil || !keyRE.MatchString(strings.TrimSpace(string(out))) {
		t.Fatalf("nearnet keygen = %q, %v; want 64 hex digits", out, err)
	}
	path := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
