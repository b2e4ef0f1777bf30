//go:build windows

package discovery

import "syscall"

// reuseControl sets SO_REUSEADDR, which on Windows lets several sockets bind
// 0.0.0.0:5353 and all receive multicast (Windows has no SO_REUSEPORT).
// Windows also gives x/net/ipv4 no receive control messages, so the
// receiving interface is inferred from the source address (see
// mconn.linkFor).
func reuseControl(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
