package resource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tr := range transports {
		for _, size := range []int{0, 1, 1000, 8<<20 + 123} {
			t.Run(fmt.Sprintf("%s/%d", tr.name, size), func(t *testing.T) {
				content := randomBytes(size, uint64(size))
				dir := t.TempDir()
				s, r := tr.pair(t)
				offer := Offer{Name: "notes.bin", Size: int64(size), Meta: map[string]string{"type": "application/octet-stream"}}
				out := transfer(t, s, r, offer, sourceFile(t, content), dir, nil)
				if out.sendErr != nil || out.recvErr != nil {
					t.Fatalf("send: %v; receive: %v", out.sendErr, out.recvErr)
				}
				if !reflect.DeepEqual(out.incoming.Offer, offer) {
					t.Errorf("receiver saw offer %+v, want %+v", out.incoming.Offer, offer)
				}
				want := Received{Path: filepath.Join(dir, "notes.bin"), Name: "notes.bin", Size: int64(size), SHA256: sha256.Sum256(content)}
				if out.rcv != want {
					t.Errorf("Received = %+v, want %+v", out.rcv, want)
				}
				if (out.sent != Sent{SHA256: want.SHA256}) {
					t.Errorf("Sent = %+v, want the content's SHA-256 and no resume", out.sent)
				}
				checkFile(t, out.rcv.Path, content)
				if got := listDir(t, dir); !slices.Equal(got, []string{"notes.bin"}) {
					t.Errorf("directory holds %q, want only the file", got)
				}
				checkProgress(t, "sender", out.sendProg, 0, int64(size))
				checkProgress(t, "receiver", out.recvProg, 0, int64(size))
			})
		}
	}
}

func TestNameWithDirectories(t *testing.T) {
	content := []byte("a photo")
	dir := t.TempDir()
	s, r := transports[0].pair(t)
	out := transfer(t, s, r, Offer{Name: "album/2024/a.jpg", Size: int64(len(content))}, bytes.NewReader(content), dir, nil)
	if out.sendErr != nil || out.recvErr != nil {
		t.Fatalf("send: %v; receive: %v", out.sendErr, out.recvErr)
	}
	if want := filepath.Join(dir, "album", "2024", "a.jpg"); out.rcv.Path != want {
		t.Errorf("Path = %q, want %q", out.rcv.Path, want)
	}
	checkFile(t, out.rcv.Path, content)
	if got, want := listDir(t, dir), []string{"album", "album/2024", "album/2024/a.jpg"}; !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

func TestCorruptedByteDetected(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			content := randomBytes(3<<20, 7)
			dir := t.TempDir()
			s, r := tr.pair(t)
			// Offset 1 MiB into the stream is inside the content.
			out := transfer(t, s, &flipConn{Conn: r, at: 1 << 20}, Offer{Name: "x.bin", Size: int64(len(content))}, sourceFile(t, content), dir, nil)
			if !errors.Is(out.recvErr, ErrHashMismatch) {
				t.Errorf("receiver: %v, want ErrHashMismatch", out.recvErr)
			}
			var re *ReceiverError
			if !errors.Is(out.sendErr, ErrHashMismatch) || !errors.As(out.sendErr, &re) || re.Code != codeHashMismatch {
				t.Errorf("sender: %v, want a ReceiverError matching ErrHashMismatch", out.sendErr)
			}
			if got := listDir(t, dir); len(got) != 0 {
				t.Errorf("directory holds %q after a corrupted transfer, want nothing", got)
			}
		})
	}
}

// TestResume breaks a transfer halfway, then sends again: the second
// transfer sends only the rest, and the file is whole.
func TestResume(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			content := randomBytes(8<<20, 11)
			size := int64(len(content))
			dir := t.TempDir()
			opts := &AcceptOptions{PartialKey: "sha256:peer-a"}
			offer := Offer{Name: "big.bin", Size: size}
			src := sourceFile(t, content)

			s, r := tr.pair(t)
			out := transfer(t, &cutConn{Conn: s, limit: 3 << 20}, r, offer, src, dir, opts)
			if out.sendErr == nil || out.recvErr == nil {
				t.Fatalf("cut transfer: send %v, receive %v; want both to fail", out.sendErr, out.recvErr)
			}
			if !errors.Is(out.recvErr, io.ErrUnexpectedEOF) {
				t.Errorf("receiver: %v, want io.ErrUnexpectedEOF", out.recvErr)
			}
			ps := partialsIn(t, dir)
			if len(ps) != 1 || len(listDir(t, dir)) != 1 {
				t.Fatalf("after the break the directory holds %q, want one partial file", listDir(t, dir))
			}
			fi, err := os.Stat(filepath.Join(dir, ps[0]))
			if err != nil {
				t.Fatal(err)
			}
			have := fi.Size()
			if have <= 0 || have >= size {
				t.Fatalf("partial holds %d bytes, want some of %d", have, size)
			}

			s, r = tr.pair(t)
			cs := &countConn{Conn: s}
			out = transfer(t, cs, r, offer, src, dir, opts)
			if out.sendErr != nil || out.recvErr != nil {
				t.Fatalf("resend: send %v, receive %v", out.sendErr, out.recvErr)
			}
			if out.rcv.Resumed != have || out.sent.Resumed != have {
				t.Errorf("Resumed = %d (receiver), %d (sender), want the %d bytes of the partial", out.rcv.Resumed, out.sent.Resumed, have)
			}
			if out.sent.SHA256 != out.rcv.SHA256 {
				t.Errorf("sender's SHA-256 %x, receiver's %x", out.sent.SHA256, out.rcv.SHA256)
			}
			if sent := cs.n.Load(); sent > size-have+4096 {
				t.Errorf("resend wrote %d bytes; want about the %d missing", sent, size-have)
			}
			checkFile(t, out.rcv.Path, content)
			checkProgress(t, "sender", out.sendProg, have, size)
			checkProgress(t, "receiver", out.recvProg, have, size)
			if got := listDir(t, dir); !slices.Equal(got, []string{"big.bin"}) {
				t.Errorf("directory holds %q, want only the file", got)
			}
		})
	}
}

// writePartial leaves a partial file as an earlier attempt from key would.
func writePartial(t *testing.T, dir, key, name string, size int64, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(partialName(key, name, size)))
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResumeRestartsFromZero(t *testing.T) {
	content := randomBytes(2<<20, 5)
	size := int64(len(content))
	cases := []struct {
		name    string
		partial []byte
		src     func(t *testing.T) io.Reader
	}{
		{"prefix differs", randomBytes(1<<20, 99), func(t *testing.T) io.Reader { return sourceFile(t, content) }},
		{"partial longer than size", append(slices.Clone(content), 1, 2, 3), func(t *testing.T) io.Reader { return sourceFile(t, content) }},
		{"source not seekable", content[:1<<20], func(t *testing.T) io.Reader { return struct{ io.Reader }{sourceFile(t, content)} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writePartial(t, dir, "k", "f.bin", size, c.partial)
			s, r := transports[0].pair(t)
			cs := &countConn{Conn: s}
			out := transfer(t, cs, r, Offer{Name: "f.bin", Size: size}, c.src(t), dir, &AcceptOptions{PartialKey: "k"})
			if out.sendErr != nil || out.recvErr != nil {
				t.Fatalf("send %v, receive %v", out.sendErr, out.recvErr)
			}
			if out.rcv.Resumed != 0 {
				t.Errorf("Resumed = %d, want 0", out.rcv.Resumed)
			}
			if cs.n.Load() < size {
				t.Errorf("sender wrote %d bytes, want all %d", cs.n.Load(), size)
			}
			checkFile(t, out.rcv.Path, content)
			checkProgress(t, "receiver", out.recvProg, 0, size)
			if got := listDir(t, dir); !slices.Equal(got, []string{"f.bin"}) {
				t.Errorf("directory holds %q, want only the file", got)
			}
		})
	}
}

// TestResumeComplete: the content all arrived but the trailer did not; a
// resend sends no content at all.
func TestResumeComplete(t *testing.T) {
	content := randomBytes(1<<20, 3)
	size := int64(len(content))
	dir := t.TempDir()
	writePartial(t, dir, "", "f.bin", size, content)
	s, r := transports[0].pair(t)
	cs := &countConn{Conn: s}
	out := transfer(t, cs, r, Offer{Name: "f.bin", Size: size}, bytes.NewReader(content), dir, nil)
	if out.sendErr != nil || out.recvErr != nil {
		t.Fatalf("send %v, receive %v", out.sendErr, out.recvErr)
	}
	if out.rcv.Resumed != size || cs.n.Load() > 1024 {
		t.Errorf("Resumed %d, sent %d bytes; want %d resumed and only messages sent", out.rcv.Resumed, cs.n.Load(), size)
	}
	checkFile(t, out.rcv.Path, content)
}

func TestPartialKeySeparatesSenders(t *testing.T) {
	if partialName("a", "f", 1) == partialName("b", "f", 1) ||
		partialName("a", "f", 1) == partialName("a", "f", 2) ||
		partialName("a", "f", 1) == partialName("a", "g", 1) {
		t.Error("partial names collide across key, size or name")
	}
	if got := partialName("k", "d/e/f.txt", 1); filepath.ToSlash(filepath.Dir(got)) != "d/e" {
		t.Errorf("partial %q is not beside its file", got)
	}
}

func TestExistingName(t *testing.T) {
	content := []byte("new content")
	old := []byte("old")
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "a.txt"), old, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	send := func(t *testing.T, dir string, opts *AcceptOptions) outcome {
		s, r := transports[0].pair(t)
		return transfer(t, s, r, Offer{Name: "a.txt", Size: int64(len(content))}, bytes.NewReader(content), dir, opts)
	}

	t.Run("refused", func(t *testing.T) {
		dir := setup(t)
		out := send(t, dir, nil)
		var rej *RejectedError
		if !errors.Is(out.recvErr, ErrExists) || !errors.As(out.sendErr, &rej) || !errors.Is(out.sendErr, ErrExists) {
			t.Errorf("receive %v, send %v; want ErrExists on both", out.recvErr, out.sendErr)
		}
		checkFile(t, filepath.Join(dir, "a.txt"), old)
		if got := listDir(t, dir); !slices.Equal(got, []string{"a.txt"}) {
			t.Errorf("directory holds %q", got)
		}
	})
	t.Run("overwrite", func(t *testing.T) {
		dir := setup(t)
		out := send(t, dir, &AcceptOptions{Overwrite: true})
		if out.sendErr != nil || out.recvErr != nil {
			t.Fatalf("send %v, receive %v", out.sendErr, out.recvErr)
		}
		checkFile(t, filepath.Join(dir, "a.txt"), content)
	})
	t.Run("rename", func(t *testing.T) {
		dir := setup(t)
		for i, want := range []string{"a (1).txt", "a (2).txt"} {
			out := send(t, dir, &AcceptOptions{Rename: true})
			if out.sendErr != nil || out.recvErr != nil {
				t.Fatalf("%d: send %v, receive %v", i, out.sendErr, out.recvErr)
			}
			if out.rcv.Name != want || out.rcv.Path != filepath.Join(dir, want) {
				t.Errorf("%d: received as %q (%q), want %q", i, out.rcv.Name, out.rcv.Path, want)
			}
			checkFile(t, out.rcv.Path, content)
		}
		checkFile(t, filepath.Join(dir, "a.txt"), old)
	})
	t.Run("directory not overwritten", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "a.txt"), 0o755); err != nil {
			t.Fatal(err)
		}
		out := send(t, dir, &AcceptOptions{Overwrite: true})
		if !errors.Is(out.recvErr, ErrExists) || !errors.Is(out.sendErr, ErrExists) {
			t.Errorf("receive %v, send %v; want ErrExists", out.recvErr, out.sendErr)
		}
	})
	t.Run("both options", func(t *testing.T) {
		dir := setup(t)
		out := send(t, dir, &AcceptOptions{Overwrite: true, Rename: true})
		var rej *RejectedError
		if out.recvErr == nil || !errors.As(out.sendErr, &rej) {
			t.Errorf("receive %v, send %v; want a config error and a rejection", out.recvErr, out.sendErr)
		}
		checkFile(t, filepath.Join(dir, "a.txt"), old)
	})
}

func TestNumbered(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), 125)) + ".txt" // 254 bytes
	for _, c := range []struct{ in, want string }{
		{"a.txt", "a (3).txt"},
		{"d/e/a.txt", "d/e/a (3).txt"},
		{"archive.tar.gz", "archive (3).tar.gz"},
		{".profile", ".profile (3)"},
		{"noext", "noext (3)"},
		{"my.report.pdf", "my.report (3).pdf"},
		{long, string(bytes.Repeat([]byte("é"), 123)) + " (3).txt"},
	} {
		if got := numbered(c.in, 3); got != c.want {
			t.Errorf("numbered(%q) = %q, want %q", c.in, got, c.want)
		}
		if err := checkName(numbered(c.in, 3)); err != nil {
			t.Errorf("numbered(%q) is not a safe name: %v", c.in, err)
		}
	}
}

func TestReject(t *testing.T) {
	s, r := transports[0].pair(t)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		defer s.Close()
		_, err := Send(ctx, s, Offer{Name: "a", Size: 1}, bytes.NewReader([]byte{1}), nil)
		done <- err
	}()
	in, err := ReadOffer(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Reject(ctx, "not now"); err != nil {
		t.Fatal(err)
	}
	var rej *RejectedError
	if err := <-done; !errors.As(err, &rej) || rej.Reason != "not now" || rej.Code != codeDeclined {
		t.Errorf("Send: %v, want a RejectedError saying why", err)
	}
	if _, err := in.Accept(ctx, t.TempDir(), nil, nil); err == nil {
		t.Error("Accept after Reject succeeded")
	}
	r.Close()
}

func TestCancel(t *testing.T) {
	content := randomBytes(16<<20, 1) // well beyond the buffers in flight (4 x bufSize)
	size := int64(len(content))
	for _, side := range []string{"receiver", "sender"} {
		for _, tr := range transports {
			t.Run(side+"/"+tr.name, func(t *testing.T) {
				dir := t.TempDir()
				s, r := tr.pair(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				cancelAfter := func(done, total int64) {
					if done >= 1<<20 {
						cancel()
					}
				}
				var sendErr error
				sent := make(chan struct{})
				go func() {
					defer close(sent)
					defer s.Close()
					var p Progress
					if side == "sender" {
						p = cancelAfter
					}
					_, sendErr = Send(ctx, s, Offer{Name: "c.bin", Size: size}, bytes.NewReader(content), p)
				}()
				rctx := context.Background()
				var p Progress
				if side == "receiver" {
					rctx, p = ctx, cancelAfter
				}
				in, err := ReadOffer(rctx, r)
				if err != nil {
					t.Fatal(err)
				}
				_, recvErr := in.Accept(rctx, dir, nil, p)
				r.Close()
				<-sent
				if recvErr == nil || sendErr == nil {
					t.Fatalf("receive %v, send %v; want both to fail", recvErr, sendErr)
				}
				if side == "receiver" && !errors.Is(recvErr, context.Canceled) {
					t.Errorf("receiver: %v, want context.Canceled", recvErr)
				}
				if side == "sender" && !errors.Is(sendErr, context.Canceled) {
					t.Errorf("sender: %v, want context.Canceled", sendErr)
				}
				if got := listDir(t, dir); len(got) != 1 || len(partialsIn(t, dir)) != 1 {
					t.Errorf("directory holds %q, want only a partial file", got)
				}
			})
		}
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, r := transports[0].pair(t)
	defer s.Close()
	defer r.Close()
	if _, err := Send(ctx, s, Offer{Name: "a", Size: 0}, bytes.NewReader(nil), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Send: %v, want context.Canceled", err)
	}
	if _, err := ReadOffer(ctx, r); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadOffer: %v, want context.Canceled", err)
	}
}

func TestShortSource(t *testing.T) {
	content := randomBytes(1<<20, 2)
	dir := t.TempDir()
	s, r := transports[1].pair(t)
	out := transfer(t, s, r, Offer{Name: "s.bin", Size: int64(len(content)) + 10}, bytes.NewReader(content), dir, nil)
	if !errors.Is(out.sendErr, ErrShortSource) {
		t.Errorf("sender: %v, want ErrShortSource", out.sendErr)
	}
	if !errors.Is(out.recvErr, io.ErrUnexpectedEOF) {
		t.Errorf("receiver: %v, want io.ErrUnexpectedEOF", out.recvErr)
	}
	if got := listDir(t, dir); len(got) != 1 || len(partialsIn(t, dir)) != 1 {
		t.Errorf("directory holds %q, want only a partial file", got)
	}
}

func TestInProgress(t *testing.T) {
	dir := t.TempDir()
	abs, _ := filepath.Abs(dir)
	key := busyKey(abs, partialName("", "a", 1))
	if !claim(key) {
		t.Fatal("claim failed")
	}
	defer release(key)
	s, r := transports[0].pair(t)
	out := transfer(t, s, r, Offer{Name: "a", Size: 1}, bytes.NewReader([]byte{1}), dir, nil)
	if !errors.Is(out.recvErr, ErrInProgress) || !errors.Is(out.sendErr, ErrInProgress) {
		t.Errorf("receive %v, send %v; want ErrInProgress", out.recvErr, out.sendErr)
	}
}

func TestSendChecksOffer(t *testing.T) {
	s, r := transports[0].pair(t)
	defer s.Close()
	defer r.Close()
	ctx := context.Background()
	var ne *NameError
	if _, err := Send(ctx, s, Offer{Name: "../x", Size: 1}, bytes.NewReader([]byte{1}), nil); !errors.As(err, &ne) {
		t.Errorf("Send(../x): %v, want a NameError", err)
	}
	if _, err := Send(ctx, s, Offer{Name: "x", Size: -1}, bytes.NewReader(nil), nil); err == nil {
		t.Error("Send with a negative size succeeded")
	}
	big := map[string]string{"k": strings.Repeat("v", maxFrame)}
	if _, err := Send(ctx, s, Offer{Name: "x", Size: 0, Meta: big}, bytes.NewReader(nil), nil); err == nil || !strings.Contains(err.Error(), "Meta") {
		t.Errorf("Send with 64 KiB of Meta: %v, want an error naming Meta", err)
	}
}
