package e2e

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/internal/netns"
)

// fileEvent is one line of `nearnet send --json` or `receive --json`
// output (the file events, ready, and the rest with their common fields).
type fileEvent struct {
	Event   string `json:"event"`
	Name    string `json:"name"`
	Peer    string `json:"peer"`
	Port    int    `json:"port"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	Resumed int64  `json:"resumed"`
	Path    string `json:"path"`
	Offered string `json:"offered"`
	Reason  string `json:"reason"`
	From    string `json:"from"`
	To      string `json:"to"`
}

func fileEvents(p *netns.Proc, kind string) []fileEvent {
	var out []fileEvent
	for _, e := range netns.JSONLines[fileEvent](p) {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// checkReceived checks that p printed a received event for name with
// the SHA-256 want, and that the file it names holds content of that hash.
func checkReceived(t testing.TB, p *netns.Proc, dir, name, want string) {
	t.Helper()
	var got []fileEvent
	for _, e := range fileEvents(p, "received") {
		if e.Name == name {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%s: %d received events for %q; want 1", p, len(got), name)
	}
	if got[0].SHA256 != want {
		t.Errorf("%s: received %q with sha256 %s; want %s (the sender's file)", p, name, got[0].SHA256, want)
	}
	if disk := filetest.FileSHA256(t, filepath.Join(dir, filepath.FromSlash(name))); disk != want {
		t.Errorf("%q on the receiver's disk has SHA-256 %s; want %s", name, disk, want)
	}
}

// TestTransferAcrossHosts: `nearnet send` on host a sends a directory tree
// to `nearnet receive --yes --count 3` on host b found by its name, then a
// file to b's host:port; every received event carries the SHA-256 of the
// file sent, the files on disk match, and both commands exit 0.
func TestTransferAcrossHosts(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	key := keyFile(t, a)
	src, dst := t.TempDir(), t.TempDir()
	want := map[string]string{
		"photos/one.jpg":         filetest.WriteRandom(t, filepath.Join(src, "photos", "one.jpg"), 300<<10),
		"photos/2024/summer.jpg": filetest.WriteRandom(t, filepath.Join(src, "photos", "2024", "summer.jpg"), 1<<20+3),
		"notes.txt":              filetest.WriteRandom(t, filepath.Join(src, "notes.txt"), 999),
	}

	r := start(t, b, "receive", "--json", "--interface", "eth0", "--name", "b", "--key-file", key,
		"--yes", "--dir", dst, "--count", "3")
	ready := waitEvent(t, r, "receive's ready event", isEvent("ready"))

	t.Run("by name", func(t *testing.T) {
		out, stderr, err := runCLI(t, a, "send", "--json", "--interface", "eth0", "--key-file", key, "--to", "b",
			filepath.Join(src, "photos"))
		if err != nil {
			t.Fatalf("send photos to b: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
		}
		for _, n := range []string{"photos/one.jpg", "photos/2024/summer.jpg"} {
			waitEvent(t, r, "received "+n, func(e event) bool { return e.Event == "received" && e.Name == n })
			checkReceived(t, r, dst, n, want[n])
		}
	})

	t.Run("by host:port", func(t *testing.T) {
		target := net.JoinHostPort(b.Addr().String(), strconv.Itoa(ready.Port))
		out, stderr, err := runCLI(t, a, "send", "--json", "--key-file", key, "--to", target, filepath.Join(src, "notes.txt"))
		if err != nil {
			t.Fatalf("send notes.txt to %s: %v\nstdout:\n%s\nstderr:\n%s", target, err, out, stderr)
		}
		waitEvent(t, r, "received notes.txt", func(e event) bool { return e.Event == "received" && e.Name == "notes.txt" })
		checkReceived(t, r, dst, "notes.txt", want["notes.txt"])
	})

	if err := waitExit(t, r); err != nil {
		t.Fatalf("receive --count 3: %v; want exit 0 after the third file", err)
	}
	for _, e := range fileEvents(r, "received") {
		if e.From == "" || e.Peer == "" {
			t.Errorf("received %+v; want the sender's name and peer ID", e)
		}
	}
}
