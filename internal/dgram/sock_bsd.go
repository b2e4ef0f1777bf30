//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package dgram

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockaddr: on the BSDs a send builds its unix.Sockaddr from the peer's
// address (unix.Sendto writes into it, so it cannot be shared).
type sockaddr struct{}

func makeSockaddr(netip.AddrPort) (sockaddr, error) { return sockaddr{}, nil }

// sock reads one datagram per system call (the BSDs have no recvmmsg that Go
// can use portably) and sends without blocking through RawConn.
type sock struct {
	c    *net.UDPConn
	rc   syscall.RawConn
	pkts []packet
}

func newSock(c *net.UDPConn) (*sock, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &sock{c: c, rc: rc, pkts: []packet{{buf: make([]byte, slotSize)}}}, nil
}

func (s *sock) read() ([]packet, error) {
	p := &s.pkts[0]
	n, _, flags, from, err := s.c.ReadMsgUDPAddrPort(p.buf, nil)
	if err != nil {
		return nil, err
	}
	p.n, p.from, p.trunc = n, from, flags&unix.MSG_TRUNC != 0
	return s.pkts, nil
}

func (s *sock) write(b []byte, p *peer) error {
	var sa unix.Sockaddr
	a := p.addr.Addr()
	if a.Is4() {
		sa = &unix.SockaddrInet4{Port: int(p.addr.Port()), Addr: a.As4()}
	} else {
		s6 := &unix.SockaddrInet6{Port: int(p.addr.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				s6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = s6
	}
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		for {
			serr = unix.Sendto(int(fd), b, unix.MSG_DONTWAIT, sa)
			if serr != unix.EINTR {
				return true // never wait for room
			}
		}
	})
	if err != nil {
		return err
	}
	switch serr {
	case nil:
		return nil
	case unix.EAGAIN, unix.ENOBUFS:
		return errWouldBlock
	case unix.EMSGSIZE:
		return errMsgSize
	}
	return os.NewSyscallError("sendto", serr)
}

func forceBuffers(*net.UDPConn, int) {}
