package resource

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nearnet/nearnet/internal/filetest"
)

// TestRealFileSystem runs against a real small file system: a tmpfs of
// 8 MiB mounted in a private mount namespace (unshare -m), so that the
// mount is gone with the process and nobody else sees it. It needs root
// (or the right to mount), and skips without.
func TestRealFileSystem(t *testing.T) {
	// Without root the injected-writer tests cover the logic.
	if !filetest.InMountNS(t, "^TestRealFileSystem$") {
		return
	}
	dir := filetest.MountTmpfs(t, 0, "size=8m,mode=0755")

	t.Run("offer larger than the free space", func(t *testing.T) {
		free, _ := freeBytes(dir)
		size := int64(16 << 20)
		s, r := transports[1].pair(t)
		out := transfer(t, s, r, Offer{Name: "big.bin", Size: size}, io.NewSectionReader(genReader{size}, 0, size), dir, nil)
		checkFreeSpaceRefusal(t, out, free)
		if got := listDir(t, dir); len(got) != 0 {
			t.Errorf("directory holds %q after a refusal", got)
		}
	})

	t.Run("disk full mid-transfer", func(t *testing.T) {
		content := randomBytes(6<<20, 16)
		size := int64(len(content))
		filler := filepath.Join(dir, "filler")
		filled := false
		fill := func(done, total int64) {
			// Once the transfer is under way, something else takes all
			// but 512 KiB of the space.
			if filled || done == 0 {
				return
			}
			filled = true
			free, _ := freeBytes(dir)
			// The transfer writes meanwhile, so the filler itself may
			// find the disk full: either way the transfer soon does.
			if err := os.WriteFile(filler, make([]byte, free-512<<10), 0o644); err != nil && !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("filler: %v", err)
			}
		}
		s, r := transports[2].pair(t)
		var sendErr error
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			defer s.Close()
			_, sendErr = Send(context.Background(), s, Offer{Name: "six.bin", Size: size}, sourceFile(t, content), nil)
		}()
		in, err := ReadOffer(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		_, recvErr := in.Accept(context.Background(), dir, nil, fill)
		r.Close()
		<-sent
		var re *ReceiverError
		if !errors.As(sendErr, &re) || !errors.Is(sendErr, ErrDiskFull) || !strings.Contains(re.Message, "disk is full") {
			t.Fatalf("sender: %v, want a ReceiverError saying the disk is full", sendErr)
		}
		var de *DroppedError
		if !errors.As(recvErr, &de) || !errors.Is(recvErr, syscall.ENOSPC) || de.Partial == "" {
			t.Fatalf("receiver: %v, want a DroppedError for ENOSPC that keeps the partial file", recvErr)
		}
		t.Logf("sender: %v", sendErr)
		t.Logf("receiver: %v", recvErr)

		// With the space back, the same file resumes.
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		s, r = transports[2].pair(t)
		out := transfer(t, s, r, Offer{Name: "six.bin", Size: size}, sourceFile(t, content), dir, nil)
		if out.sendErr != nil || out.recvErr != nil {
			t.Fatalf("resend: send %v, receive %v", out.sendErr, out.recvErr)
		}
		if out.sent.Resumed != de.Kept {
			t.Errorf("resend resumed %d bytes, want the %d kept", out.sent.Resumed, de.Kept)
		}
		checkFile(t, filepath.Join(dir, "six.bin"), content)
	})

	t.Run("read-only", func(t *testing.T) {
		if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount read-only: %v", err)
		}
		rofs := syscall.EROFS.Error()
		if err := CheckWritable(dir); err == nil || !strings.Contains(err.Error(), rofs) {
			t.Errorf("CheckWritable: %v, want an error saying %q", err, rofs)
		}
		s, r := transports[1].pair(t)
		out := transfer(t, s, r, Offer{Name: "ro.txt", Size: 2}, strings.NewReader("ro"), dir, nil)
		var rej *RejectedError
		if !errors.As(out.sendErr, &rej) || rej.Code != codeIO || !strings.Contains(rej.Reason, rofs) {
			t.Errorf("sender: %v, want a rejection naming %q", out.sendErr, rofs)
		}
		if !errors.Is(out.recvErr, syscall.EROFS) {
			t.Errorf("receiver: %v, want EROFS", out.recvErr)
		}
	})
}
