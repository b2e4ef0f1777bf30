package cli

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
)

// TestPipe: pipe --to and pipe --listen each copy stdin to the stream and
// the stream to stdout, every byte, each direction ending on its own, and
// both exit 0.
func TestPipe(t *testing.T) {
	t.Parallel()
	svc, key := service(t), keyFile(t)
	down := make([]byte, 3<<20) // the bulk direction, as tar c | pipe --to
	rand.Read(down)
	up := []byte("the listener's few bytes back\n")
	l := start(t, bytes.NewReader(up), "pipe", "--listen", "--json", "--interface", "lo", "--service", svc, "--name", "Kitchen", "--key-file", key)
	l.stderr.waitEvent(t, "pipe --listen's ready event (on stderr)", isEvent("ready"))
	d := start(t, bytes.NewReader(down), "pipe", "--interface", "lo", "--service", svc, "--key-file", key, "--to", "kitchen")
	if err := d.wait(t); err != nil {
		t.Fatalf("pipe --to: %v", err)
	}
	if err := l.wait(t); err != nil {
		t.Fatalf("pipe --listen: %v", err)
	}
	if !bytes.Equal([]byte(l.stdout.String()), down) {
		t.Errorf("pipe --listen wrote %d bytes to stdout; want the %d sent", len(l.stdout.String()), len(down))
	}
	if d.stdout.String() != string(up) {
		t.Errorf("pipe --to wrote %q to stdout; want %q", d.stdout, up)
	}
}

func TestPipeUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"pipe", "--insecure"}, {"pipe", "--insecure", "--listen", "--to", "x"}} {
		_, _, err := run(t, nil, args...)
		if err == nil || ExitCode(err) != 2 || !strings.Contains(err.Error(), "exactly one of --to TARGET and --listen") {
			t.Errorf("nearnet %s: %v; want a usage error", fmt.Sprint(args), err)
		}
	}
}
