// Package conformance checks a nearnet binary against PROTOCOL.md with a
// client written from the document alone, in another language
// (nearnet_conformance.py, Python with Debian's packages). When the
// document changes, the client changes with it; when they disagree, one of
// them is wrong.
//
// The test builds cmd/nearnet (or uses NEARNET_CONFORMANCE_BIN), starts
// five nodes on loopback (listen in mode psk, in mode pinned and in mode
// none, receive, and receive --code, which pairs) and runs the client against them. It needs
// /usr/bin/python3 with python3-websockets, python3-openssl and
// python3-cryptography, and libsodium23 (ristretto255, for pairing); without them it skips, unless NEARNET_INTEROP=required
// (as in CI), where it fails. Run it as the suite does, in a private network
// namespace:
//
//	go test -exec "$PWD/.ci/netns-exec" -count=1 ./conformance
package conformance

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
)

const python = "/usr/bin/python3"

// waitTimeout bounds each wait for a process: a deadline for a hang, not
// a performance threshold.
const waitTimeout = 60 * time.Second

func TestConformance(t *testing.T) {
	err := exec.Command(python, "-c", "import websockets.client, OpenSSL.SSL, cryptography, ctypes, ctypes.util; ctypes.CDLL(ctypes.util.find_library('sodium') or 'libsodium.so.23')").Run()
	netns.Require(t, python+" with python3-websockets, python3-openssl, python3-cryptography and libsodium23: "+fmt.Sprint(err), err == nil)
	bin := binary(t)
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	recvDir := filepath.Join(dir, "received")
	if err := os.Mkdir(recvDir, 0o700); err != nil {
		t.Fatal(err)
	}
	stranger := make([]byte, 32) // an identity nobody holds
	rand.Read(stranger)

	common := []string{"--json", "--interface", "lo", "--port", "0"}
	psk := startNode(t, bin, "listen", append(common, "--name", "srv", "--echo", "--key-file", keyFile))
	pinned := startNode(t, bin, "listen", append(common, "--name", "pinned", "--trust", "sha256:"+hex.EncodeToString(stranger)))
	none := startNode(t, bin, "listen", append(common, "--name", "plain", "--echo", "--insecure"))
	recv := startNode(t, bin, "receive", append(common, "--name", "rcv", "--yes", "--dir", recvDir, "--key-file", keyFile))
	pairDir := filepath.Join(dir, "paired")
	if err := os.Mkdir(pairDir, 0o700); err != nil {
		t.Fatal(err)
	}
	knownPeers := filepath.Join(dir, "known_peers")
	const pairCode, wrongCode = "314-159", "314-158"
	pair := startNode(t, bin, "receive", append(common, "--name", "pairs", "--yes", "--dir", pairDir, "--code", pairCode, "--known-peers", knownPeers))

	protocol, err := filepath.Abs("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"nearnet_conformance.py",
		"--key-file", keyFile, "--protocol", protocol,
		"--psk", psk.addr(), "--psk-peer", psk.peer, "--psk-pid", strconv.Itoa(psk.cmd.Process.Pid),
		"--pinned", pinned.addr(), "--none", none.addr(),
		"--receive", recv.addr(), "--receive-dir", recvDir,
		"--pair", pair.addr(), "--pair-code", pairCode, "--pair-code-wrong", wrongCode,
	}
	if only := os.Getenv("NEARNET_CONFORMANCE_ONLY"); only != "" {
		args = append(args, "--only", only)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, args...)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "FAIL ") {
			t.Error(line)
		} else {
			t.Log(line)
		}
	}
	if err != nil && !t.Failed() {
		t.Fatalf("nearnet_conformance.py: %v", err)
	}
	if only := os.Getenv("NEARNET_CONFORMANCE_ONLY"); only == "" || strings.Contains(only, "pairing") {
		// The client paired with the receive --code node as "py-paired".
		if data, err := os.ReadFile(knownPeers); err != nil || !strings.HasSuffix(string(data), " py-paired\n") {
			t.Errorf("known-peers file after the client paired: %q, %v; want an entry for py-paired", data, err)
		}
	}
	if os.Getenv("NEARNET_CONFORMANCE_ONLY") == "" {
		// The client's last check sent the psk listener SIGTERM: it
		// closed its links with 1001 and must now exit 0.
		if err := psk.wait(); err != nil {
			t.Errorf("nearnet listen after SIGTERM: %v; want exit status 0", err)
		}
	}
}

// binary returns the nearnet binary to test: NEARNET_CONFORMANCE_BIN, or
// one built from this module.
func binary(t *testing.T) string {
	if b := os.Getenv("NEARNET_CONFORMANCE_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "nearnet")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/nearnet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nearnet: %v\n%s", err, out)
	}
	return bin
}

// node is a running nearnet command that printed its ready event.
type node struct {
	t    *testing.T
	cmd  *exec.Cmd
	peer string
	port int

	mu     sync.Mutex // guards stderr
	stderr strings.Builder
	done   chan error
}

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// startNode runs bin with args and waits for its ready event. It is
// interrupted and waited for when the test ends; its stderr is logged if
// the test failed.
func startNode(t *testing.T, bin, command string, flags []string) *node {
	t.Helper()
	args := append([]string{command}, flags...)
	n := &node{t: t, cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.stderr.Write(p)
	})
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == "ready" {
				ready <- ev
			}
		}
		io.Copy(io.Discard, stdout)
		n.done <- n.cmd.Wait()
	}()
	t.Cleanup(func() {
		n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.done:
		case <-time.After(waitTimeout):
			n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			n.mu.Lock()
			t.Logf("nearnet %s stderr:\n%s", strings.Join(args, " "), n.stderr.String())
			n.mu.Unlock()
		}
	})
	select {
	case ev := <-ready:
		n.peer, _ = ev["peer"].(string)
		port, _ := ev["port"].(float64)
		n.port = int(port)
	case <-time.After(waitTimeout):
		t.Fatalf("nearnet %s printed no ready event", strings.Join(args, " "))
	}
	return n
}

// wait waits for the process to exit and returns its exit error.
func (n *node) wait() error {
	select {
	case err := <-n.done:
		n.done <- err // for the cleanup
		return err
	case <-time.After(waitTimeout):
		return fmt.Errorf("still running after %v", waitTimeout)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
