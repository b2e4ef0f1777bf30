package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
)

const python = "/usr/bin/python3"

// TestPythonWebSocketPeer: Python's websockets, an implementation
// independent of ours, completes the nearnet v1 handshake of PROTOCOL.md
// (upgrade, hellos, data messages; testdata/ws_client.py) with
// `nearnet listen --insecure --echo` and gets its message echoed. It runs on
// the loopback of a host of its own, so the listener's mDNS stays there.
func TestPythonWebSocketPeer(t *testing.T) {
	t.Parallel()
	cli(t)
	err := exec.Command(python, "-c", "import websockets").Run()
	netns.Require(t, python+" with the websockets package (python3-websockets): "+fmt.Sprint(err), err == nil)
	script, err := filepath.Abs("testdata/ws_client.py")
	if err != nil {
		t.Fatal(err)
	}
	lab := netns.New(t, "py")
	h := lab.Host("py")

	const port = 7001
	l := start(t, h, "listen", "--insecure", "--echo", "--json", "--interface", "lo",
		"--port", strconv.Itoa(port), "--name", "srv")
	ready := waitEvent(t, l, "the listener's ready event", isEvent("ready"))
	if ready.Port != port {
		t.Fatalf("ready %s; want port %d", ready, port)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	url := fmt.Sprintf("ws://127.0.0.1:%d/nearnet/v1", port)
	cmd := h.Command(ctx, python, script, url, "py", "hello from python")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ws_client.py: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var got struct {
		Subprotocol string `json:"subprotocol"`
		Peer        string `json:"peer"`
		ServerHello struct {
			Version int    `json:"version"`
			Peer    string `json:"peer"`
			Name    string `json:"name"`
		} `json:"server_hello"`
		Echo string `json:"echo"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("ws_client.py output %q: %v", stdout.String(), err)
	}
	if got.Echo != "hello from python" {
		t.Errorf("echo %q; want %q", got.Echo, "hello from python")
	}
	if got.ServerHello.Peer != ready.Peer || got.ServerHello.Name != "srv" || got.ServerHello.Version != 1 {
		t.Errorf("server hello %+v; want version 1, peer %s, name srv", got.ServerHello, ready.Peer)
	}
	msg := waitEvent(t, l, "the listener's message event", isEvent("message"))
	if msg.Text != "hello from python" || msg.Name != "py" || msg.Peer != got.Peer {
		t.Errorf("listener printed %s; want text %q from name py, peer %s", msg, "hello from python", got.Peer)
	}
}
