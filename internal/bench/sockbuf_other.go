//go:build !linux

package bench

import "net"

// forceBuffers: only Linux lets a privileged process pass the system's
// buffer limit; elsewhere SetReadBuffer and SetWriteBuffer are all there is.
func forceBuffers(*net.UDPConn, int) {}
