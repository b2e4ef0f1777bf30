package dgram

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// setDontFragment sets IP_DONTFRAG / IPV6_DONTFRAG: a datagram over the
// interface MTU fails with EMSGSIZE instead of being fragmented.
func setDontFragment(c *net.UDPConn, v6 bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			serr = os.NewSyscallError("setsockopt IPV6_DONTFRAG", unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1))
		} else {
			serr = os.NewSyscallError("setsockopt IP_DONTFRAG", unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_DONTFRAG, 1))
		}
	})
	if err != nil {
		return err
	}
	return serr
}
