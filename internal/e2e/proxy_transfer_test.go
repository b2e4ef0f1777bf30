//go:build linux

package e2e

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nearnet/nearnet/internal/filetest"
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
	src, dst := t.TempDir(), t.TempDir()
	r, port := startOnPort(t, "receive", "receive", "--key-file", key, "--name", "rcv", "--yes", "--dir", dst)
	target := "127.0.0.1:" + strconv.Itoa(port)

	for _, tc := range proxyCases {
		t.Run(tc.scheme, func(t *testing.T) {
			addr := tc.start(t, proxytest.User, proxytest.Password, port)
			name := "via-" + tc.scheme + ".bin"
			sum := filetest.WriteRandom(t, filepath.Join(src, name), 2<<20+11)
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
			filetest.WriteRandom(t, filepath.Join(src, wrongName), 1000)
			p = startHere(t, "send", "--json", "--key-file", key, "--to", target,
				"--proxy", proxytest.URL(tc.scheme, wrong, addr), filepath.Join(src, wrongName))
			checkProxyRefused(t, p, "send", tc, wrong)
			for _, e := range fileEvents(r, "offer") {
				if e.Name == wrongName {
					t.Errorf("the receiver got an offer through a proxy that refused the credentials: %+v", e)
				}
			}
		})
	}
}
