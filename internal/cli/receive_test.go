package cli

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/filetest"
)

func init() {
	// The file events' documented fields (output.go), checked by
	// output.events like those of the other events.
	file := func(extra map[string]string) map[string]string {
		m := map[string]string{"name": "string", "bytes": "number", "peer": "string"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	documented["offer"] = file(nil)
	documented["progress"] = file(map[string]string{"total": "number", "resumed": "number"})
	documented["received"] = file(map[string]string{"sha256": "string", "path": "string", "resumed": "number", "from": "string"})
	documented["sent"] = file(map[string]string{"sha256": "string", "resumed": "number", "to": "string"})
	documented["failed"] = file(map[string]string{"reason": "string"})
	documented["refused"] = file(map[string]string{"reason": "string", "from": "string"})
	documented["summary"] = map[string]string{"files": "number", "sent": "number", "rejected": "number", "failed": "number", "bytes": "number"}
}

// tty stands in for a terminal: receive asks on it, send and receive draw
// bars on it (isTerminal).
type ttyReader struct{ io.Reader }

func (ttyReader) isTerminal() bool { return true }

type ttyWriter struct{ *output }

func (ttyWriter) isTerminal() bool { return true }

// recvProc is a running `nearnet receive --json` on loopback.
type recvProc struct {
	*proc
	name string
	port int
	dir  string
}

// startReceive starts receive --json into dir with the test's service on
// lo, plus args, and waits for its ready event.
func startReceive(t *testing.T, stdin io.Reader, svc, name, dir string, args ...string) *recvProc {
	t.Helper()
	p := start(t, stdin, append([]string{"receive", "--json", "--interface", "lo", "--service", svc, "--name", name, "--dir", dir}, args...)...)
	ready := p.stdout.waitEvent(t, name+"'s ready event", isEvent("ready"))
	return &recvProc{proc: p, name: name, port: int(ready["port"].(float64)), dir: dir}
}

func (r *recvProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// eventsOf returns o's events of kind.
func eventsOf(t testing.TB, o *output, kind string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range o.events(t) {
		if e["event"] == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestReceiveAsks: without --yes, receive asks about each offer and reads
// the answers from stdin: y takes the first file, n rejects the second,
// and the third is rejected because stdin ended. Each rejection is a
// rejected event with a reason, on both sides, and send exits non-zero
// with a summary.
func TestReceiveAsks(t *testing.T) {
	t.Parallel()
	key, svc := keyFile(t), service(t)
	src, dst := t.TempDir(), t.TempDir()
	for _, n := range []string{"1.txt", "2.txt", "3.txt"} {
		filetest.WriteRandom(t, filepath.Join(src, n), 1000)
	}
	// The answers are all there from the start: receive asks one offer at
	// a time, and send offers one file at a time, in order.
	r := startReceive(t, ttyReader{strings.NewReader("y\nn\n")}, svc, "asker", dst, "--key-file", key)

	out, stderr, err := run(t, nil, "send", "--json", "--key-file", key, "--to", r.addr(),
		filepath.Join(src, "1.txt"), filepath.Join(src, "2.txt"), filepath.Join(src, "3.txt"))
	if err == nil || ExitCode(err) != 1 {
		t.Fatalf("send with two offers rejected: %v; want exit status 1", err)
	}
	if !strings.Contains(err.Error(), "2 of 3 files not sent") {
		t.Errorf("send error %q; want it to count the files not sent", err)
	}
	sent, rejected := eventsOf(t, out, "sent"), eventsOf(t, out, "rejected")
	if len(sent) != 1 || sent[0]["name"] != "1.txt" || len(rejected) != 2 {
		t.Fatalf("send events: %d sent, %d rejected; want 1.txt sent and 2 rejected:\n%s\nstderr:\n%s", len(sent), len(rejected), out, stderr)
	}
	if why := rejected[0]["reason"].(string); rejected[0]["name"] != "2.txt" || !strings.Contains(why, "declined") {
		t.Errorf("send: rejected %v; want 2.txt declined by the receiver", rejected[0])
	}
	if why := rejected[1]["reason"].(string); rejected[1]["name"] != "3.txt" || !strings.Contains(why, "input ended") {
		t.Errorf("send: rejected %v; want 3.txt rejected as the receiver's input ended", rejected[1])
	}
	if s := eventsOf(t, out, "summary"); len(s) != 1 || s[0]["sent"] != 1.0 || s[0]["rejected"] != 2.0 || s[0]["files"] != 3.0 {
		t.Errorf("summary %v; want 3 files, 1 sent, 2 rejected", s)
	}

	r.stdout.waitEvent(t, "the receiver's rejected event for 3.txt", func(e map[string]any) bool {
		return e["event"] == "rejected" && e["name"] == "3.txt"
	})
	for _, e := range eventsOf(t, r.stdout, "rejected") {
		if e["from"] == "" || e["reason"] == "" {
			t.Errorf("receiver: rejected %v; want who sent it and why", e)
		}
	}
	if n := len(eventsOf(t, r.stdout, "offer")); n != 3 {
		t.Errorf("receiver printed %d offer events; want 3", n)
	}
	for _, q := range []string{`accept "1.txt"`, `accept "2.txt"`, `accept "3.txt"`, "[y/N]"} {
		if !strings.Contains(r.stderr.String(), q) {
			t.Errorf("receiver's stderr lacks the question %q:\n%s", q, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "2.txt")); err == nil {
		t.Errorf("the rejected 2.txt is in the receiver's directory")
	}
	if got, want := filetest.FileSHA256(t, filepath.Join(dst, "1.txt")), filetest.FileSHA256(t, filepath.Join(src, "1.txt")); got != want {
		t.Errorf("1.txt arrived with SHA-256 %s; want %s", got, want)
	}
}

// TestReceiveNeedsTerminalOrYes: without --yes and without a terminal to
// ask on, receive refuses to start, saying to pass --yes.
func TestReceiveNeedsTerminalOrYes(t *testing.T) {
	t.Parallel()
	_, _, err := run(t, strings.NewReader(""), "receive", "--insecure", "--interface", "lo", "--dir", t.TempDir())
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "--yes") || !strings.Contains(err.Error(), "not a terminal") {
		t.Fatalf("receive without --yes, stdin not a terminal: %v; want a usage error pointing to --yes", err)
	}
	_, _, err = run(t, nil, "receive", "--insecure", "--yes", "--dir", filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "--dir") {
		t.Fatalf("receive --dir missing: %v; want an error naming --dir", err)
	}
	_, _, err = run(t, nil, "receive", "--insecure", "--yes", "--count", "-1")
	if ExitCode(err) != 2 {
		t.Fatalf("receive --count -1: %v; want a usage error", err)
	}
}

// TestReceiveCountEnds: receive --count 1 exits 0 by itself once a file
// has arrived.
func TestReceiveCountEnds(t *testing.T) {
	t.Parallel()
	key, svc := keyFile(t), service(t)
	src, dst := t.TempDir(), t.TempDir()
	want := filetest.WriteRandom(t, filepath.Join(src, "one.bin"), 5000)
	r := startReceive(t, nil, svc, "counter", dst, "--key-file", key, "--yes", "--count", "1")
	if _, stderr, err := run(t, nil, "send", "--key-file", key, "--to", r.addr(), filepath.Join(src, "one.bin")); err != nil {
		t.Fatalf("send: %v\nstderr:\n%s", err, stderr)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("receive --count 1: %v; want exit 0 after one file", err)
	}
	if got := eventsOf(t, r.stdout, "received"); len(got) != 1 || got[0]["sha256"] != want {
		t.Fatalf("received events %v; want one with sha256 %s", got, want)
	}
}

// An offer the library refused shows as a refused event with the name as
// offered, escaped in the text form.
func TestRefusedOfferEvent(t *testing.T) {
	p := nearnet.Peer{Name: "mallory", ID: nearnet.NewPeerID()}
	e := newRefusedOffer(p, &nearnet.ResourceNameError{Name: "../\x1b[2Jx", Reason: `component ".." leaves the directory`})
	if e.Event != "refused" || e.Name != "../\x1b[2Jx" || e.From != "mallory" || e.Peer != p.ID.String() || !strings.Contains(e.Reason, "unsafe name") {
		t.Fatalf("event %+v", e)
	}
	if txt := e.text(); strings.Contains(txt, "\x1b") || !strings.Contains(txt, "mallory") || !strings.Contains(txt, "leaves the directory") {
		t.Errorf("text %q: want the peer and the reason, without the escape character", txt)
	}
}
