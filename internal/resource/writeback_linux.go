//go:build linux && !arm

package resource

import (
	"os"
	"syscall"
)

// writebackEvery is how much written content asks the kernel to start
// writing it to disk, so that the fsync before the rename finds little
// left to do and the disk works while the network does.
const writebackEvery = 8 << 20

// writeback starts the disk writing content from behind the transfer
// (sync_file_range with SYNC_FILE_RANGE_WRITE: it does not wait for the
// disk, and guarantees nothing; the fsync at the end does).
type writeback struct {
	f    *os.File
	from int64 // content before this offset has been handed to the kernel
}

// wrote records that the file holds content up to offset end.
func (w *writeback) wrote(end int64) {
	if end-w.from < writebackEvery {
		return
	}
	if rc, err := w.f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SyncFileRange(int(fd), w.from, end-w.from, 2 /* SYNC_FILE_RANGE_WRITE */)
		})
	}
	w.from = end
}
