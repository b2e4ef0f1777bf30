package bench

import (
	"net"

	"golang.org/x/sys/unix"
)

// forceBuffers raises c's buffers to size past net.core.rmem_max and
// wmem_max when the process may (CAP_NET_ADMIN), as internal/dgram does
// for nearnet's socket, so the baseline gets the same buffers.
func forceBuffers(c *net.UDPConn, size int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if got, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && got < size {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}
		if got, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && got < size {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		}
	})
}
