package tcp

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// controlSocket sets TCP_USER_TIMEOUT to Config.DropTime on TCP sockets:
// data (or keepalive probes) unacknowledged that long fails the
// connection, which then resumes on a new one (the session resumes).
func (t *Transport) controlSocket(network, address string, rc syscall.RawConn) error {
	ms := int(t.o.DropTime.Milliseconds())
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		t.o.Logger.Debug("nearnet: TCP_USER_TIMEOUT not set", "err", serr)
	}
	return nil
}

// tuneAccepted applies controlSocket to an accepted connection: Linux does
// not copy TCP_USER_TIMEOUT from the listening socket.
func (t *Transport) tuneAccepted(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			t.controlSocket("tcp", "", rc)
		}
	}
}
