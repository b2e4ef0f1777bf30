//go:build !linux

package quict

import "net"

// raiseBuffers asks for size-byte socket buffers. Only Linux lets a
// privileged process pass the system's limit, and the net package cannot
// read the sizes back, so it reports 0 (unknown).
func raiseBuffers(c *net.UDPConn, size int) (read, write int) {
	c.SetReadBuffer(size)
	c.SetWriteBuffer(size)
	return 0, 0
}
