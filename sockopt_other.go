//go:build !linux

package nearnet

import (
	"net"
	"syscall"
)

// controlSocket does nothing where TCP_USER_TIMEOUT is not available: a
// dead path is found by TCP keepalives (Config.KeepAlive*) when idle, and
// by the kernel's retransmission limit when data is outstanding.
func (n *Node) controlSocket(network, address string, rc syscall.RawConn) error { return nil }

func (n *Node) tuneAccepted(c net.Conn) {}
