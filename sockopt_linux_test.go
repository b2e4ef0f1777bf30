package nearnet

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Both ends of a link drop a dead transport after DropTime:
// TCP_USER_TIMEOUT is set on dialed and on accepted sockets.
func TestDropTimeSetsUserTimeout(t *testing.T) {
	a := newNode(t, Config{DropTime: 3 * time.Second, DisablePathMonitor: true})
	b := newNode(t, Config{DropTime: 4 * time.Second, DisablePathMonitor: true})
	ca, cb := pair(t, a, b)
	for _, tc := range []struct {
		c    *Conn
		want int
	}{{ca, 3000}, {cb, 4000}} {
		raw := tc.c.s.SendPath().T.(interface{ NetConn() net.Conn }).NetConn()
		rc, err := raw.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		rc.Control(func(fd uintptr) { got, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
		if err != nil || got != tc.want {
			t.Errorf("%v: TCP_USER_TIMEOUT = %d ms (%v), want %d", raw.(*net.TCPConn).LocalAddr(), got, err, tc.want)
		}
	}
}
