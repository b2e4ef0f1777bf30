//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package dgram

import (
	"net"
	"net/netip"
)

// sockaddr is unused where sends go through the net package.
type sockaddr struct{}

func makeSockaddr(netip.AddrPort) (sockaddr, error) { return sockaddr{}, nil }

// sock uses the net package alone: one datagram per call each way. On
// Windows a send may wait briefly for buffer space (the net package gives no
// non-blocking send there); UDP sends rarely do.
type sock struct {
	c    *net.UDPConn
	pkts []packet
}

func newSock(c *net.UDPConn) (*sock, error) {
	return &sock{c: c, pkts: []packet{{buf: make([]byte, slotSize)}}}, nil
}

func (s *sock) read() ([]packet, error) {
	p := &s.pkts[0]
	n, from, err := s.c.ReadFromUDPAddrPort(p.buf)
	if err != nil {
		return nil, err
	}
	p.n, p.from, p.trunc = n, from, false
	return s.pkts, nil
}

func (s *sock) write(b []byte, p *peer) error {
	_, err := s.c.WriteToUDPAddrPort(b, p.addr)
	if err != nil && isMsgSize(err) {
		return errMsgSize
	}
	return err
}

func forceBuffers(*net.UDPConn, int) {}
