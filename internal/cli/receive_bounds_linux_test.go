package cli

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestReceiveChecksDir: receive refuses to start on a directory it cannot
// write in, naming the file system's reason. As root, a read-only tmpfs in
// a private mount namespace (unshare -m); otherwise a directory without
// write permission.
func TestReceiveChecksDir(t *testing.T) {
	var dir, want string
	switch {
	case os.Getenv("NEARNET_TEST_MOUNTNS") != "":
		dir, want = t.TempDir(), syscall.EROFS.Error()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
			t.Skipf("cannot mount a tmpfs: %v", err)
		}
		defer syscall.Unmount(dir, syscall.MNT_DETACH)
	case os.Geteuid() == 0:
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("root ignores permissions, and there is no unshare(1) for a read-only mount")
		}
		cmd := exec.Command(unshare, "-m", "--propagation", "private", "--", os.Args[0], "-test.run=^TestReceiveChecksDir$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "NEARNET_TEST_MOUNTNS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a private mount namespace:\n%s", out)
		if err != nil {
			t.Fatalf("the test in the mount namespace failed: %v", err)
		}
		return
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
