//go:build unix

package tcp

import (
	"errors"
	"net"
	"syscall"
)

type rawNBWriter struct{ rc syscall.RawConn }

func newNBWriter(c net.Conn) nbWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rawNBWriter{rc}
}

// tryWrite writes what the socket buffer takes now, without waiting.
func (w rawNBWriter) tryWrite(p []byte) (int, error) {
	var n int
	var werr error
	err := w.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, err := syscall.Write(int(fd), p[n:])
			if k > 0 {
				n += k
			}
			switch {
			case err == nil:
				continue
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				return true // full: the rest becomes overflow
			default:
				werr = err
				return true
			}
		}
		return true
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
