package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// failingWriter writes to the file until limit bytes are in it, then
// fails with errno, as a file system that fills up (ENOSPC) or breaks
// (EIO) would: the bytes before the limit are really written.
func failingWriter(limit int64, errno syscall.Errno) func(*os.File, []byte) (int, error) {
	var n int64
	return func(f *os.File, b []byte) (int, error) {
		if n+int64(len(b)) <= limit {
			m, err := f.Write(b)
			n += int64(m)
			return m, err
		}
		m, _ := f.Write(b[:limit-n])
		n += int64(m)
		return m, &os.PathError{Op: "write", Path: f.Name(), Err: errno}
	}
}

// TestDiskFullMidTransfer: a write that fails with ENOSPC is reported to
// the sender as "the receiver's disk is full" (a ReceiverError, not a
// reset), the receiver says where it keeps the partial file, and a
// resend resumes from it.
func TestDiskFullMidTransfer(t *testing.T) {
	content := randomBytes(12<<20, 11)
	size := int64(len(content))
	const limit = 2<<20 + 12345
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			dir := t.TempDir()
			s, r := tr.pair(t)
			out := transferHook(t, s, r, Offer{Name: "full.bin", Size: size}, sourceFile(t, content), dir, nil,
				func(in *Incoming) { in.writeFile = failingWriter(limit, syscall.ENOSPC) })
			var re *ReceiverError
			if !errors.As(out.sendErr, &re) || re.Code != codeDiskFull || !errors.Is(out.sendErr, ErrDiskFull) ||
				!strings.Contains(re.Message, "disk is full") || !strings.Contains(re.Message, "keeps") {
				t.Fatalf("sender: %v, want a ReceiverError saying the disk is full and what is kept", out.sendErr)
			}
			var de *DroppedError
			if !errors.As(out.recvErr, &de) || !errors.Is(out.recvErr, ErrDiskFull) || !errors.Is(out.recvErr, syscall.ENOSPC) {
				t.Fatalf("receiver: %v, want a DroppedError matching ErrDiskFull and ENOSPC", out.recvErr)
			}
			if de.Timeout() {
				t.Error("a full disk reports Timeout")
			}
			if ps := partialsIn(t, dir); len(ps) != 1 || de.Partial != filepath.Join(mustAbs(t, dir), filepath.FromSlash(ps[0])) {
				t.Fatalf("partial files %q, DroppedError.Partial %q; want the one kept", ps, de.Partial)
			}
			if fi, err := os.Stat(de.Partial); err != nil || fi.Size() != de.Kept || de.Kept != limit {
				t.Fatalf("partial file: %v, %v; want %d bytes as Kept (%d) says", fi, err, limit, de.Kept)
			}

			s, r = tr.pair(t)
			out = transfer(t, s, r, Offer{Name: "full.bin", Size: size}, sourceFile(t, content), dir, nil)
			if out.sendErr != nil || out.recvErr != nil {
				t.Fatalf("resend: send %v, receive %v", out.sendErr, out.recvErr)
			}
			if out.sent.Resumed != limit {
				t.Errorf("resend resumed %d bytes, want %d", out.sent.Resumed, limit)
			}
			checkFile(t, filepath.Join(dir, "full.bin"), content)
		})
	}
}

// TestWriteErrorNamed: a write error that is not a full disk reaches the
// sender with the file system's reason, not as a fault of the name.
func TestWriteErrorNamed(t *testing.T) {
	content := randomBytes(3<<20, 12)
	dir := t.TempDir()
	s, r := transports[1].pair(t)
	out := transferHook(t, s, r, Offer{Name: "eio.bin", Size: int64(len(content))}, bytes.NewReader(content), dir, nil,
		func(in *Incoming) { in.writeFile = failingWriter(1<<20, syscall.EIO) })
	var re *ReceiverError
	if !errors.As(out.sendErr, &re) || re.Code != codeIO || !strings.Contains(re.Message, syscall.EIO.Error()) {
		t.Errorf("sender: %v, want a ReceiverError with code io naming %q", out.sendErr, syscall.EIO.Error())
	}
	var de *DroppedError
	if !errors.As(out.recvErr, &de) || de.Code != codeIO || !errors.Is(out.recvErr, syscall.EIO) {
		t.Errorf("receiver: %v, want a DroppedError wrapping EIO", out.recvErr)
	}
}

// TestOfferLargerThanFreeSpace: an offer the file system cannot hold is
// refused before any byte, with the free space in the reason.
func TestOfferLargerThanFreeSpace(t *testing.T) {
	dir := t.TempDir()
	free, ok := freeBytes(dir)
	if !ok {
		t.Skip("no statfs here")
	}
	s, r := transports[1].pair(t)
	size := int64(maxSize) // more than any disk here
	out := transfer(t, s, r, Offer{Name: "huge.bin", Size: size}, io.NewSectionReader(genReader{size}, 0, size), dir, nil)
	checkFreeSpaceRefusal(t, out, free)
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("directory holds %q after a refusal", got)
	}
}

func checkFreeSpaceRefusal(t *testing.T, out outcome, free uint64) {
	t.Helper()
	var rej *RejectedError
	if !errors.As(out.sendErr, &rej) || rej.Code != codeDiskFull || !errors.Is(out.sendErr, ErrDiskFull) {
		t.Fatalf("sender: %v, want a rejection with code disk_full", out.sendErr)
	}
	// The reason gives the free space in bytes; it may have moved a little
	// since freeBytes looked, so compare its order of magnitude.
	var got uint64
	if i := strings.LastIndex(rej.Reason, " are free"); i < 0 {
		t.Fatalf("reason %q does not give the free space", rej.Reason)
	} else if _, err := fmt.Sscanf(rej.Reason[strings.LastIndex(rej.Reason[:i], "(")+1:i], "%d bytes)", &got); err != nil {
		t.Fatalf("reason %q: free space not in bytes: %v", rej.Reason, err)
	}
	if got > 2*free+1<<20 || 2*got+1<<20 < free {
		t.Errorf("reason %q says %d bytes free; statfs says %d", rej.Reason, got, free)
	}
	if !errors.Is(out.recvErr, ErrDiskFull) {
		t.Errorf("receiver: %v, want ErrDiskFull", out.recvErr)
	}
}

func mustAbs(t *testing.T, dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// rawOffer plays a sender by hand: it offers name, reads the answer,
// sends the start and content (the first bytes of the resource), and
// returns the answer. It may run in a goroutine of its own: it reports
// failures with t.Error.
func rawOffer(t *testing.T, s net.Conn, name string, size int64, content []byte) replyMsg {
	t.Helper()
	if err := writeFrame(s, offerMsg{V: version, Name: name, Size: &size}); err != nil {
		t.Error(err)
		return replyMsg{}
	}
	b, err := readFrame(s)
	if err != nil {
		t.Error(err)
		return replyMsg{}
	}
	var rep replyMsg
	if err := unmarshalObject("reply", b, &rep); err != nil {
		t.Error(err)
		return replyMsg{}
	}
	if !rep.Accept {
		return rep
	}
	zero := int64(0)
	if err := writeFrame(s, startMsg{Offset: &zero}); err != nil {
		t.Error(err)
		return replyMsg{}
	}
	if _, err := s.Write(content); err != nil {
		t.Error(err)
		return replyMsg{}
	}
	return rep
}

// TestSilentSenderDropped: a sender that goes quiet after the acceptance
// is dropped after IdleTimeout: it hears why, the receiver keeps what came
// for a resume, and the name is free again for another sender.
func TestSilentSenderDropped(t *testing.T) {
	content := randomBytes(2<<20, 13)
	size := int64(len(content))
	opts := &AcceptOptions{IdleTimeout: 100 * time.Millisecond}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			dir := t.TempDir()
			s, r := tr.pair(t)
			ctx := context.Background()
			result := make(chan resultMsg, 1)
			go func() {
				defer s.Close()
				rawOffer(t, s, "quiet.bin", size, content[:1])
				var m resultMsg
				if b, err := readFrame(s); err == nil {
					_ = unmarshalObject("result", b, &m)
				}
				result <- m
			}()
			in, err := ReadOffer(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			_, err = in.Accept(ctx, dir, opts, nil)
			r.Close()
			var de *DroppedError
			if !errors.As(err, &de) || !errors.Is(err, ErrIdleTimeout) || !de.Timeout() || de.Kept != 1 {
				t.Fatalf("Accept: %v, want a DroppedError for an idle sender keeping 1 byte", err)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("Accept: %v is not a net.Error timeout", err)
			}
			if m := <-result; m.OK || m.Code != codeIdle || !strings.Contains(m.Error, "no bytes for 100ms") {
				t.Errorf("the sender got %+v, want a failed result with code %q and the deadline", m, codeIdle)
			}

			// Another sender offers the same name, size and (empty) key:
			// the name is free, and it resumes after the byte kept.
			s, r = tr.pair(t)
			out := transfer(t, s, r, Offer{Name: "quiet.bin", Size: size}, sourceFile(t, content), dir, opts)
			if out.sendErr != nil || out.recvErr != nil {
				t.Fatalf("second sender: send %v, receive %v", out.sendErr, out.recvErr)
			}
			if out.sent.Resumed != 1 {
				t.Errorf("second sender resumed %d bytes, want 1", out.sent.Resumed)
			}
			checkFile(t, filepath.Join(dir, "quiet.bin"), content)
		})
	}
}

// gatedReader returns nothing until open is closed, then reads from r.
type gatedReader struct {
	open <-chan struct{}
	r    io.Reader
}

func (g gatedReader) Read(p []byte) (int, error) {
	<-g.open
	return g.r.Read(p)
}

// TestSendSeesIdleTimeout: Send, stalled on its source, learns why the
// receiver dropped it rather than seeing a broken stream.
func TestSendSeesIdleTimeout(t *testing.T) {
	content := randomBytes(1<<20, 14)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			dir := t.TempDir()
			s, r := tr.pair(t)
			ctx := context.Background()
			open := make(chan struct{})
			sendErr := make(chan error, 1)
			go func() {
				defer s.Close()
				_, err := Send(ctx, s, Offer{Name: "stall.bin", Size: int64(len(content))}, gatedReader{open, bytes.NewReader(content)}, nil)
				sendErr <- err
			}()
			in, err := ReadOffer(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			_, err = in.Accept(ctx, dir, &AcceptOptions{IdleTimeout: 50 * time.Millisecond}, nil)
			r.Close()
			close(open)
			var de *DroppedError
			if !errors.As(err, &de) || !errors.Is(err, ErrIdleTimeout) || de.Partial != "" {
				t.Errorf("Accept: %v, want an idle DroppedError keeping nothing (nothing came)", err)
			}
			var re *ReceiverError
			if err := <-sendErr; !errors.As(err, &re) || !errors.Is(err, ErrIdleTimeout) {
				t.Errorf("Send: %v, want a ReceiverError matching ErrIdleTimeout", err)
			}
			if got := listDir(t, dir); len(got) != 0 {
				t.Errorf("directory holds %q; an empty partial file is not kept", got)
			}
		})
	}
}

// TestAbandonedOffersBounded: a flood of offers that each send a little
// and disconnect leaves at most MaxPartials partial files of at most
// MaxPartialBytes, the oldest deleted first and each deletion reported.
func TestAbandonedOffersBounded(t *testing.T) {
	const offers, maxN = 40, 5
	const chunk = 100 << 10
	content := randomBytes(chunk, 15)
	for _, c := range []struct {
		name  string
		opts  AcceptOptions
		sent  int // bytes each offer sends
		wantN int // partial files left
	}{
		{"count", AcceptOptions{MaxPartials: maxN}, 1, maxN},
		{"bytes", AcceptOptions{MaxPartialBytes: 3*chunk + chunk/2}, chunk, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var removed []string
			o := c.opts
			o.PartialRemoved = func(path string, size int64, reason string) {
				if size != int64(c.sent) || reason == "" {
					t.Errorf("removed %s (%d bytes): %q", path, size, reason)
				}
				removed = append(removed, path)
			}
			ctx := context.Background()
			for i := range offers {
				s, r := transports[1].pair(t)
				name := fmt.Sprintf("flood/%d.bin", i)
				go func() {
					defer s.Close()
					rawOffer(t, s, name, 1<<30, content[:c.sent])
				}()
				in, err := ReadOffer(ctx, r)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := in.Accept(ctx, dir, &o, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("offer %d: Accept %v, want a broken stream", i, err)
				}
				r.Close()
				if n := len(partialsIn(t, dir)); n > c.wantN {
					t.Fatalf("after %d offers %d partial files are kept, want at most %d", i+1, n, c.wantN)
				}
			}
			ps := partialsIn(t, dir)
			if len(ps) != c.wantN || len(removed) != offers-c.wantN {
				t.Fatalf("%d partial files left, %d reported removed; want %d and %d", len(ps), len(removed), c.wantN, offers-c.wantN)
			}
			// The newest are the ones kept.
			for i := offers - c.wantN; i < offers; i++ {
				p := partialName("", fmt.Sprintf("flood/%d.bin", i), 1<<30)
				if !slices.Contains(ps, p) {
					t.Errorf("the partial file of offer %d (%s) is gone; kept %q", i, p, ps)
				}
			}
		})
	}
}

// TestAbandonedOffersBoundedConcurrently: offers abandoned all at once
// leave no more partial files than the bound once they have all ended,
// however their ends interleave.
func TestAbandonedOffersBoundedConcurrently(t *testing.T) {
	const offers, maxN = 40, 5
	dir := t.TempDir()
	opts := &AcceptOptions{MaxPartials: maxN}
	ctx := context.Background()
	errs := make(chan error, offers)
	for i := range offers {
		s, r := transports[1].pair(t)
		name := fmt.Sprintf("flood/%d.bin", i)
		go func() {
			defer s.Close()
			rawOffer(t, s, name, 1<<30, []byte{byte(i)})
		}()
		go func() {
			defer r.Close()
			in, err := ReadOffer(ctx, r)
			if err == nil {
				_, err = in.Accept(ctx, dir, opts, nil)
			}
			errs <- err
		}()
	}
	for range offers {
		if err := <-errs; !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Accept: %v, want a broken stream", err)
		}
	}
	if ps := partialsIn(t, dir); len(ps) != maxN {
		t.Errorf("%d partial files left, want %d", len(ps), maxN)
	}
}

// TestOldPartialsExpire: partial files not written for MaxPartialAge go
// when a transfer starts, and when PrunePartials runs (receiver start).
func TestOldPartialsExpire(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-8 * 24 * time.Hour)
	plant := func(name string) string {
		p := writePartial(t, dir, "k", name, 10, []byte("abc"))
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := plant("a.bin")
	var removed []string
	opts := &AcceptOptions{PartialRemoved: func(path string, _ int64, reason string) {
		if !strings.Contains(reason, "MaxPartialAge") {
			t.Errorf("%s removed because %q", path, reason)
		}
		removed = append(removed, path)
	}}
	content := []byte("fresh")
	s, r := transports[1].pair(t)
	out := transfer(t, s, r, Offer{Name: "fresh.txt", Size: int64(len(content))}, bytes.NewReader(content), dir, opts)
	if out.sendErr != nil || out.recvErr != nil {
		t.Fatalf("send %v, receive %v", out.sendErr, out.recvErr)
	}
	if !slices.Equal(removed, []string{mustAbs(t, a)}) {
		t.Errorf("removed %q, want %q", removed, a)
	}

	// One planted while no transfer runs goes at the next PrunePartials;
	// a young one stays.
	b := plant("b.bin")
	young := writePartial(t, dir, "k", "c.bin", 10, []byte("abc"))
	removed = nil
	if n, err := PrunePartials(dir, opts); n != 1 || err != nil {
		t.Errorf("PrunePartials = %d, %v; want 1, nil", n, err)
	}
	if !slices.Equal(removed, []string{mustAbs(t, b)}) {
		t.Errorf("removed %q, want %q", removed, b)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young partial file: %v", err)
	}
}

// TestAcceptOptionsChecked: a wrong option is a ConfigError naming its
// field, and the sender hears that the offer was refused.
func TestAcceptOptionsChecked(t *testing.T) {
	for _, c := range []struct {
		field string
		opts  AcceptOptions
	}{
		{"AcceptOptions.IdleTimeout", AcceptOptions{IdleTimeout: -1}},
		{"AcceptOptions.MaxPartials", AcceptOptions{MaxPartials: -1}},
		{"AcceptOptions.MaxPartialBytes", AcceptOptions{MaxPartialBytes: -1}},
		{"AcceptOptions.MaxPartialAge", AcceptOptions{MaxPartialAge: -time.Hour}},
		{"AcceptOptions.Rename", AcceptOptions{Rename: true, Overwrite: true}},
	} {
		s, r := transports[0].pair(t)
		out := transfer(t, s, r, Offer{Name: "x", Size: 1}, bytes.NewReader([]byte{1}), t.TempDir(), &c.opts)
		var ce *nnerr.ConfigError
		if !errors.As(out.recvErr, &ce) || ce.Field != c.field {
			t.Errorf("%+v: Accept %v, want a ConfigError naming %s", c.opts, out.recvErr, c.field)
		}
		var rej *RejectedError
		if !errors.As(out.sendErr, &rej) {
			t.Errorf("%+v: Send %v, want a rejection", c.opts, out.sendErr)
		}
	}
	if _, err := PrunePartials(t.TempDir(), &AcceptOptions{MaxPartials: -2}); err == nil {
		t.Error("PrunePartials took MaxPartials -2")
	}
}
