package cli

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/filetest"
)

// TestSendTree: send a directory tree, found by name on loopback, to
// receive --yes --count N: every file arrives with the sender's SHA-256
// under its '/'-separated path, a name that exists is saved as
// "a (1).txt" beside the untouched original, both sides print parseable
// events, and both exit 0.
func TestSendTree(t *testing.T) {
	t.Parallel()
	key, svc := keyFile(t), service(t)
	src, dst := t.TempDir(), t.TempDir()
	sizes := map[string]int{"a.txt": 100, "empty": 0, "sub/b.bin": 700 << 10, "sub/deeper/c.bin": 1100<<10 + 7}
	want := map[string]string{} // resource name → SHA-256
	for n, size := range sizes {
		want["album/"+n] = filetest.WriteRandom(t, filepath.Join(src, "album", filepath.FromSlash(n)), size)
	}
	existing := filepath.Join(dst, "album", "a.txt")
	filetest.WriteRandom(t, existing, 10)
	existingSHA := filetest.FileSHA256(t, existing)

	r := startReceive(t, nil, svc, "recv-tree", dst, "--key-file", key, "--yes", "--count", "4")
	out, stderr, err := run(t, nil, "send", "--json", "--key-file", key, "--interface", "lo", "--service", svc,
		"--to", "recv-tree", filepath.Join(src, "album"))
	if err != nil {
		t.Fatalf("send: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("receive --count 4: %v; want exit 0 once 4 files arrived", err)
	}

	sent := eventsOf(t, out, "sent")
	var names []string
	for _, e := range sent {
		n := e["name"].(string)
		names = append(names, n)
		if e["sha256"] != want[n] || e["to"] != "recv-tree" || e["bytes"] != float64(sizes[strings.TrimPrefix(n, "album/")]) {
			t.Errorf("sent %v; want to recv-tree, sha256 %s", e, want[n])
		}
	}
	slices.Sort(names)
	if wantNames := []string{"album/a.txt", "album/empty", "album/sub/b.bin", "album/sub/deeper/c.bin"}; !slices.Equal(names, wantNames) {
		t.Errorf("sent %q; want %q", names, wantNames)
	}
	if s := eventsOf(t, out, "summary"); len(s) != 1 || s[0]["sent"] != 4.0 || s[0]["failed"] != 0.0 {
		t.Errorf("summary %v; want 4 sent", s)
	}

	received := eventsOf(t, r.stdout, "received")
	if len(received) != 4 {
		t.Fatalf("%d received events; want 4:\n%s", len(received), r.stdout)
	}
	for _, e := range received {
		name := e["name"].(string)
		offered := name
		if o, ok := e["offered"].(string); ok {
			offered = o
		}
		if e["sha256"] != want[offered] {
			t.Errorf("received %v: sha256 %v; want %s", e, e["sha256"], want[offered])
		}
		if got := filetest.FileSHA256(t, filepath.Join(dst, filepath.FromSlash(name))); got != want[offered] {
			t.Errorf("%s on disk has SHA-256 %s; want %s", name, got, want[offered])
		}
		if e["path"] != filepath.Join(dst, filepath.FromSlash(name)) {
			t.Errorf("received %v: path %v; want %s", e, e["path"], filepath.Join(dst, filepath.FromSlash(name)))
		}
		if offered == "album/a.txt" && name != "album/a (1).txt" {
			t.Errorf("received %v; want album/a.txt, which exists, saved as \"album/a (1).txt\"", e)
		}
	}
	if got := filetest.FileSHA256(t, existing); got != existingSHA {
		t.Errorf("the existing album/a.txt changed")
	}
	for _, e := range eventsOf(t, r.stdout, "offer") {
		if e["name"] == "album/a.txt" && e["exists"] != true {
			t.Errorf("offer %v; want exists: true", e)
		}
	}
	// Each file's progress ends with all of it, on both sides.
	for _, o := range []*output{out, r.stdout} {
		final := map[string]bool{}
		for _, e := range eventsOf(t, o, "progress") {
			if e["bytes"] == e["total"] {
				final[e["name"].(string)] = true
			}
		}
		for n := range want {
			if !final[n] {
				t.Errorf("no final progress event for %s in:\n%s", n, o)
			}
		}
	}
}

// TestSendResume: a send cancelled mid-way (its ctx, as Ctrl-C does) exits
// non-zero saying so; the receiver keeps what it got, and sending again
// resumes from there: "resumed from" in the output, resumed > 0 in the
// events, and the file arrives whole.
func TestSendResume(t *testing.T) {
	t.Parallel()
	key, svc := keyFile(t), service(t)
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "big.bin")
	// Well beyond what is in flight at once (a few MiB of buffers and
	// socket buffers), so that the cancel lands mid-way.
	sum := filetest.WriteRandom(t, path, 32<<20+5)
	r := startReceive(t, nil, svc, "recv-resume", dst, "--key-file", key, "--yes", "--count", "1")

	// The hook stops the sender after it has sent some bytes until the
	// receiver has shown that it holds some; then the test cancels it.
	reached, release := make(chan struct{}), make(chan struct{})
	fired := false
	hook := func(name string, done, total int64) {
		if fired || done == 0 {
			return
		}
		fired = true
		close(reached)
		select {
		case <-release:
		case <-time.After(waitTimeout):
		}
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), progressHookKey{}, hook))
	defer cancel()
	first := startCtx(t, ctx, "send", "--json", "--key-file", key, "--to", r.addr(), path)
	select {
	case <-reached:
	case <-first.done:
		t.Fatalf("send ended before the hook stopped it: %v\n%s", first.err, first.stdout)
	case <-time.After(waitTimeout):
		t.Fatal("send reported no progress")
	}
	r.stdout.waitEvent(t, "the receiver's progress with bytes", func(e map[string]any) bool {
		return e["event"] == "progress" && e["bytes"].(float64) > 0
	})
	cancel()
	close(release)
	err := first.wait(t)
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("cancelled send: %v; want exit 1 saying it was interrupted and how to resume", err)
	}
	if f := eventsOf(t, first.stdout, "failed"); len(f) != 1 || !strings.Contains(f[0]["reason"].(string), "interrupted") {
		t.Errorf("cancelled send: failed events %v; want one saying it was interrupted", f)
	}
	r.stdout.waitEvent(t, "the receiver's failed event", isEvent("failed"))

	// The second send on a terminal: its bar counts the whole file, so it
	// starts where the first one stopped, not at 0 %.
	out := newOutput()
	second := startCtxOut(t, context.Background(), ttyWriter{out}, "send", "--key-file", key, "--to", r.addr(), path)
	if err := second.wait(t); err != nil {
		t.Fatalf("second send: %v\nstdout:\n%s\nstderr:\n%s", err, out, second.stderr)
	}
	if !strings.Contains(out.String(), "(resumed from") || !strings.Contains(out.String(), `sent "big.bin"`) {
		t.Errorf("second send's output does not say it resumed:\n%q", out)
	}
	if m := regexp.MustCompile(`(\d+)% \|`).FindStringSubmatch(out.String()); m == nil || m[1] == "0" {
		t.Errorf("second send's bar starts at %v%%; want the share of the file already there:\n%q", m, out)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("receive --count 1: %v", err)
	}
	got := eventsOf(t, r.stdout, "received")
	if len(got) != 1 || got[0]["sha256"] != sum || got[0]["resumed"].(float64) <= 0 {
		t.Fatalf("received %v; want big.bin with sha256 %s, resumed > 0", got, sum)
	}
	if filetest.FileSHA256(t, filepath.Join(dst, "big.bin")) != sum {
		t.Errorf("big.bin on disk differs from the original")
	}
	if left, _ := filepath.Glob(filepath.Join(dst, ".nearnet-partial-*")); len(left) > 0 {
		t.Errorf("partial files left after the resumed transfer: %q", left)
	}
}

// TestSendProgressBar: on a terminal, send and receive draw progress
// bars; lines about events erase the bar first.
func TestSendProgressBar(t *testing.T) {
	t.Parallel()
	key, svc := keyFile(t), service(t)
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "bar.bin")
	filetest.WriteRandom(t, path, 2<<20)
	rout := newOutput()
	r := startCtxOut(t, context.Background(), ttyWriter{rout}, "receive", "--interface", "lo", "--service", svc,
		"--name", "recv-bar", "--dir", dst, "--key-file", key, "--yes", "--count", "1")
	waitFor(t, "receive's ready line", func() bool { return strings.Contains(rout.String(), "listening on") })
	addr := strings.Fields(strings.SplitN(rout.String(), "listening on ", 2)[1])[0]

	sout := newOutput()
	s := startCtxOut(t, context.Background(), ttyWriter{sout}, "send", "--key-file", key, "--to", addr, path)
	if err := s.wait(t); err != nil {
		t.Fatalf("send: %v\n%s\nstdout:\n%s\nreceive:\n%s", err, s.stderr, sout, rout)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("receive: %v", err)
	}
	for who, o := range map[string]*output{"send": sout, "receive": rout} {
		text := o.String()
		if !strings.Contains(text, "\r\x1b[K") || !strings.Contains(text, "%") || !strings.Contains(text, "bar.bin") {
			t.Errorf("%s on a terminal drew no bar:\n%q", who, text)
		}
	}
	if !strings.Contains(sout.String(), `sent "bar.bin"`) || !strings.Contains(rout.String(), `received "bar.bin"`) {
		t.Errorf("no sent / received lines:\nsend: %q\nreceive: %q", sout, rout)
	}
}

// TestSendRefusesBadArguments: send checks its arguments before
// connecting: no --to, no FILE, a missing file, a name receivers refuse,
// two files of one name.
func TestSendRefusesBadArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	filetest.WriteRandom(t, filepath.Join(dir, "ok.txt"), 10)
	filetest.WriteRandom(t, filepath.Join(dir, "bad:name.txt"), 10)
	filetest.WriteRandom(t, filepath.Join(dir, "x", "ok.txt"), 10)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{filepath.Join(dir, "ok.txt")}, 2, "--to TARGET is required"},
		{[]string{"--to", "127.0.0.1:1"}, 2, "no FILE given"},
		{[]string{"--to", "127.0.0.1:1", filepath.Join(dir, "missing")}, 1, "no such file"},
		{[]string{"--to", "127.0.0.1:1", filepath.Join(dir, "bad:name.txt")}, 1, `"bad:name.txt"`},
		{[]string{"--to", "127.0.0.1:1", filepath.Join(dir, "ok.txt"), filepath.Join(dir, "x", "ok.txt")}, 1, "go by that name"},
	} {
		_, _, err := run(t, nil, append([]string{"send", "--insecure"}, tc.args...)...)
		if ExitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("send %q: %v (exit %d); want exit %d saying %q", tc.args, err, ExitCode(err), tc.code, tc.want)
		}
	}
}

// startCtx is start with the caller's ctx (which may carry a progress
// hook); the cleanup cancels it and waits for Run.
func startCtx(t testing.TB, ctx context.Context, args ...string) *proc {
	t.Helper()
	return startCtxOut(t, ctx, nil, args...)
}

// startCtxOut is startCtx writing stdout to w (nil: the proc's stdout).
func startCtxOut(t testing.TB, ctx context.Context, w io.Writer, args ...string) *proc {
	t.Helper()
	return startRun(t, ctx, nil, w, args...)
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSendSaysWhatItWaitsFor: while the receiver has not answered, send
// says whose answer it waits for, and for which file.
func TestSendSaysWhatItWaitsFor(t *testing.T) {
	t.Parallel()
	key, svc := keyFile(t), service(t)
	path := filepath.Join(t.TempDir(), "big.bin")
	filetest.WriteRandom(t, path, 1000)
	r := startReceive(t, nil, svc, "kitchen", t.TempDir(), "--key-file", key, "--yes", "--count", "1")
	out, _, err := run(t, nil, "send", "--key-file", key, "--to", r.addr(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `waiting for kitchen (peer `) || !strings.Contains(out.String(), `to accept "big.bin" (1000 B)`) {
		t.Errorf("send's output does not say what it waits for:\n%s", out)
	}
}
