package dgram

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/windows"
)

// Winsock option numbers (ws2ipdef.h); x/sys/windows does not name them.
const (
	ipDontFragment = 14 // IP_DONTFRAGMENT, level IPPROTO_IP
	ipv6DontFrag   = 14 // IPV6_DONTFRAG, level IPPROTO_IPV6
)

// setDontFragment sets IP_DONTFRAGMENT / IPV6_DONTFRAG: a datagram over the
// interface MTU fails with WSAEMSGSIZE instead of being fragmented.
func setDontFragment(c *net.UDPConn, v6 bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			serr = os.NewSyscallError("setsockopt IPV6_DONTFRAG", windows.SetsockoptInt(windows.Handle(fd), windows.IPPROTO_IPV6, ipv6DontFrag, 1))
		} else {
			serr = os.NewSyscallError("setsockopt IP_DONTFRAGMENT", windows.SetsockoptInt(windows.Handle(fd), windows.IPPROTO_IP, ipDontFragment, 1))
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func isMsgSize(err error) bool { return errors.Is(err, windows.WSAEMSGSIZE) }
