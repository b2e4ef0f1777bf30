package cli

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/nearnet/nearnet/internal/filetest"
)

// TestReceiveChecksDir: receive refuses to start on a directory it cannot
// write in, naming the file system's reason. As root, a read-only tmpfs in
// a private mount namespace (unshare -m); otherwise a directory without
// write permission.
func TestReceiveChecksDir(t *testing.T) {
	var dir, want string
	switch {
	case os.Geteuid() == 0: // root ignores permissions: a read-only mount
		if !filetest.InMountNS(t, "^TestReceiveChecksDir$") {
			return
		}
		dir, want = filetest.MountTmpfs(t, syscall.MS_RDONLY, "size=1m"), syscall.EROFS.Error()
	default:
		dir, want = t.TempDir(), syscall.EACCES.Error()
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
	}
	_, stderr, err := run(t, nil, "receive", "--insecure", "--interface", "lo", "--service", service(t), "--yes", "--dir", dir)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--dir") {
		t.Errorf("receive --dir on an unwritable directory: %v (stderr %q); want an error about --dir saying %q", err, stderr, want)
	}
}
