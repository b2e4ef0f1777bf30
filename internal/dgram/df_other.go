//go:build !linux && !darwin && !windows

package dgram

import (
	"errors"
	"net"
	"syscall"
)

// setDontFragment has no portable form here; the Mux still refuses payloads
// over the MTU of the interface, but the OS may fragment a datagram if the
// path MTU is smaller than that.
func setDontFragment(*net.UDPConn, bool) error {
	return errors.New("don't-fragment is not supported on this OS")
}

func isMsgSize(err error) bool { return errors.Is(err, syscall.EMSGSIZE) }
