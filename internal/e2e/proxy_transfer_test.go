//go:build linux

package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/proxytest"
)

// TestSendThroughProxies: `nearnet send --proxy URL --to 127.0.0.1:P`
// reaches `nearnet receive --port P` through a real tinyproxy (HTTP
// CONNECT with BasicAuth) and a real Dante (SOCKS5 with username and
// password): the file arrives with the sender's SHA-256 (its stream
// connection goes through the proxy too). With a wrong password send exits
// non-zero saying the proxy rejected the credentials, without the
// password, and the receiver sees no offer. Like TestChatThroughProxies,
// everything runs in the test's own namespace, on loopback.
func TestSendThroughProxies(t *testing.T) {
	t.Parallel()
	cli(t)
	key := keyHere(t)
	port := proxytest.FreePort(t)
	src, dst := t.TempDir(), t.TempDir()
	r := startHere(t, "receive", "--json", "--key-file", key, "--interface", "lo", "--port", strconv.Itoa(port),
		"--name", "rcv", "--yes", "--dir", dst)
	ready := waitEvent(t, r, "receive's ready event", isEvent("ready"))
	if ready.Port != port {
		t.Fatalf("ready %s; want port %d", ready, port)
	}
	target := "127.0.0.1:" + strconv.Itoa(port)

	for _, tc := range []struct {
		scheme string
		start  func(t testing.TB, user, pass string, ports ...int) string
		why    *regexp.Regexp // what the error for a wrong password says
	}{
		{"http", proxytest.Tinyproxy, regexp.MustCompile(`proxy http://\S+ rejected the credentials \(HTTP 40[17]\)`)},
		{"socks5", proxytest.Dante, regexp.MustCompile(`proxy socks5://\S+ rejected the credentials`)},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			addr := tc.start(t, proxytest.User, proxytest.Password, port)
			name := "via-" + tc.scheme + ".bin"
			sum := writeRandom(t, filepath.Join(src, name), 2<<20+11)
			p := startHere(t, "send", "--json", "--key-file", key, "--to", target,
				"--proxy", proxytest.URL(tc.scheme, proxytest.Password, addr), filepath.Join(src, name))
			if err := waitExit(t, p); err != nil {
				t.Fatalf("send through %s: %v; want exit 0\nstderr:\n%s", tc.scheme, err, p.Stderr())
			}
			sent := fileEvents(p, "sent")
			if len(sent) != 1 || sent[0].SHA256 != sum {
				t.Errorf("send through %s: sent events %+v; want one with sha256 %s", tc.scheme, sent, sum)
			}
			waitEvent(t, r, "received "+name, func(e event) bool { return e.Event == "received" && e.Name == name })
			checkReceived(t, r, dst, name, sum)

			const wrong = "wrong-Pw"
			wrongName := "wrong-" + tc.scheme + ".bin"
			writeRandom(t, filepath.Join(src, wrongName), 1000)
			p = startHere(t, "send", "--json", "--key-file", key, "--to", target,
				"--proxy", proxytest.URL(tc.scheme, wrong, addr), filepath.Join(src, wrongName))
			p.CloseStdin()
			err := waitExit(t, p)
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) {
				t.Fatalf("send with a wrong %s proxy password: exit %v; want a non-zero exit status", tc.scheme, err)
			}
			t.Logf("send with a wrong %s proxy password: %s", tc.scheme, p.Stderr())
			if !tc.why.MatchString(p.Stderr()) {
				t.Errorf("send with a wrong %s proxy password: stderr %q; want it to match %s", tc.scheme, p.Stderr(), tc.why)
			}
			if out := p.Stdout() + p.Stderr(); strings.Contains(out, wrong) || strings.Contains(out, proxytest.Password) {
				t.Errorf("send with a wrong %s proxy password shows a password:\n%s", tc.scheme, out)
			}
			for _, e := range fileEvents(r, "offer") {
				if e.Name == wrongName {
					t.Errorf("the receiver got an offer through a proxy that refused the credentials: %+v", e)
				}
			}
		})
	}
}
