package quict

import (
	"net"

	"golang.org/x/sys/unix"
)

// raiseBuffers asks for size-byte socket buffers, past net.core.rmem_max
// and wmem_max when the process may (CAP_NET_ADMIN), and returns what the
// kernel granted. It is best-effort: without the capability the plain
// request stands.
func raiseBuffers(c *net.UDPConn, size int) (read, write int) {
	c.SetReadBuffer(size)
	c.SetWriteBuffer(size)
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0
	}
	rc.Control(func(fd uintptr) {
		fdi := int(fd)
		// The kernel reports twice what it was asked for.
		if got, err := unix.GetsockoptInt(fdi, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && got < 2*size {
			unix.SetsockoptInt(fdi, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}
		if got, err := unix.GetsockoptInt(fdi, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && got < 2*size {
			unix.SetsockoptInt(fdi, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		}
		read, _ = unix.GetsockoptInt(fdi, unix.SOL_SOCKET, unix.SO_RCVBUF)
		write, _ = unix.GetsockoptInt(fdi, unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return read, write
}
