//go:build !linux

package tcp

import (
	"net"
	"syscall"
)

// controlSocket does nothing where TCP_USER_TIMEOUT is not available: a
// dead path is found by TCP keepalives (Config.KeepAlive*) when idle, and
// by the kernel's retransmission limit when data is outstanding.
func (t *Transport) controlSocket(network, address string, rc syscall.RawConn) error { return nil }

func (t *Transport) tuneAccepted(c net.Conn) {}
