package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/security"
)

// gate reads nothing until open is closed, then reads from r: a sender
// whose source stalls.
type gate struct {
	open <-chan struct{}
	r    io.Reader
}

func (g gate) Read(p []byte) (int, error) {
	<-g.open
	return g.r.Read(p)
}

// TestReceiveDropsSilentSender: a peer whose offer receive accepted and
// who then sends nothing is dropped after --idle, with a failed event
// saying so; the name is free at once for another peer's send of the same
// file (before the fix it got in_progress for as long as the silent peer
// stayed connected), and the silent peer learns why it was dropped.
func TestReceiveDropsSilentSender(t *testing.T) {
	t.Parallel()
	for _, tr := range []struct {
		flag string
		t    nearnet.Transport
	}{{"tcp", nearnet.TransportTCP}, {"quic", nearnet.TransportQUIC}} {
		t.Run(tr.flag, func(t *testing.T) {
			t.Parallel()
			dropSilentSender(t, tr.flag, tr.t)
		})
	}
}

func dropSilentSender(t *testing.T, transportFlag string, transport nearnet.Transport) {
	keyPath, svc := keyFile(t), service(t)
	src, dst := t.TempDir(), t.TempDir()
	const size = 5000
	want := filetest.WriteRandom(t, filepath.Join(src, "same.bin"), size)
	r := startReceive(t, nil, svc, "inbox", dst, "--key-file", keyPath, "--yes", "--idle", "200ms", "--transport", transportFlag)

	key, err := security.LoadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	node, err := nearnet.NewNode(&nearnet.Config{Key: &key, Service: svc, Interfaces: []string{"lo"}, Name: "silent", Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := node.Connect(ctx, r.addr())
	if err != nil {
		t.Fatal(err)
	}
	open := make(chan struct{})
	sendErr := make(chan error, 1)
	go func() {
		_, err := c.SendResourceOffer(ctx, nearnet.ResourceOffer{Name: "same.bin", Size: size}, gate{open, strings.NewReader(strings.Repeat("x", size))}, nil)
		sendErr <- err
	}()
	dropped := r.stdout.waitEvent(t, "a failed event for the silent sender", func(e map[string]any) bool {
		return e["event"] == "failed" && e["from"] == "silent"
	})
	if reason, _ := dropped["reason"].(string); !strings.Contains(reason, "no bytes for 200ms") {
		t.Errorf("failed event %v: want the idle deadline in the reason", dropped)
	}

	if _, stderr, err := run(t, nil, "send", "--key-file", keyPath, "--name", "other", "--transport", transportFlag, "--to", r.addr(), filepath.Join(src, "same.bin")); err != nil {
		t.Fatalf("send of the same name by another peer: %v\nstderr:\n%s", err, stderr)
	}
	got := r.stdout.waitEvent(t, "the other peer's file", isEvent("received"))
	if got["sha256"] != want || got["name"] != "same.bin" {
		t.Errorf("received %v, want same.bin with sha256 %s", got, want)
	}

	close(open)
	var re *nearnet.ResourceReceiverError
	if err := <-sendErr; !errors.As(err, &re) || !errors.Is(err, nearnet.ErrResourceIdle) {
		t.Errorf("the silent sender's SendResource: %v, want a ResourceReceiverError matching ErrResourceIdle", err)
	}
}

func init() {
	documented["pruned"] = map[string]string{"name": "string", "bytes": "number", "path": "string", "reason": "string"}
}

// TestReceivePrunesAtStart: a partial file older than --partial-age goes
// when receive starts, reported as a pruned event; a young one stays.
func TestReceivePrunesAtStart(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	old := filepath.Join(dst, ".nearnet-partial-00112233445566778899aabbccddeeff")
	young := filepath.Join(dst, ".nearnet-partial-ffeeddccbbaa99887766554433221100")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	r := startReceive(t, nil, service(t), "pruner", dst, "--insecure", "--yes", "--partial-age", "1h")
	e := r.stdout.waitEvent(t, "a pruned event", isEvent("pruned"))
	if e["path"] != old || e["bytes"] != 3.0 || !strings.Contains(e["reason"].(string), "1h0m0s (--partial-age)") {
		t.Errorf("pruned event %v, want %s (3 bytes) with the age in the reason", e, old)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old partial file: %v, want it gone", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young partial file: %v", err)
	}
}
