package filetest

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// envMountNS marks a test binary run again inside a private mount namespace.
const envMountNS = "NEARNET_TEST_MOUNTNS"

// InMountNS reports whether the test runs in a private mount namespace
// (unshare -m) made for it, where it may mount file systems nobody else
// sees. Outside one, it runs the test named run (a -test.run pattern)
// again in one, logs its output, fails t if it failed, and returns false:
// the caller then returns. It skips without root or unshare(1).
func InMountNS(t *testing.T, run string) bool {
	t.Helper()
	if os.Getenv(envMountNS) != "" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a file system in a private mount namespace (unshare -m)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1) here")
	}
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "--", os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envMountNS+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a private mount namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the test in the mount namespace failed: %v", err)
	}
	return false
}

// MountTmpfs mounts a tmpfs of the given options on a new temporary
// directory (within InMountNS) and returns it; it skips if the mount fails.
func MountTmpfs(t *testing.T, flags uintptr, options string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, options); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}
