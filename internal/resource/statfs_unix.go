//go:build linux || darwin || freebsd

package resource

import (
	"os"

	"golang.org/x/sys/unix"
)

// freeSpace reports the bytes an unprivileged user may still write on the
// file system holding f; ok is false if it cannot tell.
func freeSpace(f *os.File) (free uint64, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var st unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &st) }); err != nil || serr != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
