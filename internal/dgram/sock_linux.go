package dgram

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readBatch is how many datagrams one recvmmsg call may return.
const readBatch = 32

// sockaddr is a peer address in the kernel's form, built once per peer so
// that sending allocates nothing. It is never written after makeSockaddr,
// so concurrent senders may share it.
type sockaddr struct {
	raw unix.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	len uint32
}

func makeSockaddr(ap netip.AddrPort) (sockaddr, error) {
	var s sockaddr
	port := ap.Port()
	if ap.Addr().Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.raw))
		sa.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		sa.Addr = ap.Addr().As4()
		s.len = unix.SizeofSockaddrInet4
		return s, nil
	}
	s.raw.Family = unix.AF_INET6
	p := (*[2]byte)(unsafe.Pointer(&s.raw.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	s.raw.Addr = ap.Addr().As16()
	if z := ap.Addr().Zone(); z != "" {
		id, err := zoneIndex(z)
		if err != nil {
			return s, err
		}
		s.raw.Scope_id = id
	}
	s.len = unix.SizeofSockaddrInet6
	return s, nil
}

// sock reads with recvmmsg (up to readBatch datagrams a call) and sends with
// a non-blocking sendto, both through the socket's RawConn so that Close
// cannot race a system call on a reused descriptor.
type sock struct {
	rc syscall.RawConn

	// Reader state: the Mux's reader goroutine only.
	pkts   []packet
	msgs   []unix.Mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool
	zones  map[uint32]string

	ops sync.Pool // of *sendOp
}

func newSock(c *net.UDPConn) (*sock, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &sock{
		rc:    rc,
		pkts:  make([]packet, readBatch),
		msgs:  make([]unix.Mmsghdr, readBatch),
		iovs:  make([]unix.Iovec, readBatch),
		names: make([]unix.RawSockaddrInet6, readBatch),
		zones: make(map[uint32]string),
	}
	bufs := make([]byte, readBatch*slotSize)
	for i := range s.pkts {
		s.pkts[i].buf = bufs[i*slotSize : (i+1)*slotSize : (i+1)*slotSize]
		s.iovs[i].Base = &s.pkts[i].buf[0]
		s.iovs[i].SetLen(slotSize)
		s.msgs[i].Hdr.Iov = &s.iovs[i]
		s.msgs[i].Hdr.SetIovlen(1)
		s.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
	}
	s.readFn = s.recvmmsg
	s.ops.New = func() any {
		op := new(sendOp)
		op.fn = op.sendto
		return op
	}
	return s, nil
}

func (s *sock) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(len(s.msgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until readable
		}
		s.rn, s.rerr = int(n), e
		return true
	}
}

// read blocks until at least one datagram arrives and returns the batch. The
// packets are valid until the next call.
func (s *sock) read() ([]packet, error) {
	for i := range s.msgs {
		s.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		s.msgs[i].Hdr.Flags = 0
		s.msgs[i].Len = 0
	}
	if err := s.rc.Read(s.readFn); err != nil {
		return nil, err
	}
	if s.rerr != 0 {
		return nil, os.NewSyscallError("recvmmsg", s.rerr)
	}
	for i := 0; i < s.rn; i++ {
		p := &s.pkts[i]
		p.n = int(s.msgs[i].Len)
		p.trunc = s.msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0
		p.from = s.addrOf(&s.names[i])
	}
	return s.pkts[:s.rn], nil
}

func (s *sock) addrOf(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	switch rsa.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&rsa.Port))
		a := netip.AddrFrom16(rsa.Addr)
		if rsa.Scope_id != 0 {
			a = a.WithZone(s.zone(rsa.Scope_id))
		}
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// zone names an interface index the way net does, caching the answer.
func (s *sock) zone(index uint32) string {
	if z, ok := s.zones[index]; ok {
		return z
	}
	z := strconv.FormatUint(uint64(index), 10)
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		z = ifi.Name
	}
	if len(s.zones) > 256 {
		clear(s.zones)
	}
	s.zones[index] = z
	return z
}

// sendOp carries one sendto through RawConn.Write; pooled, with its method
// value bound once, so that a send allocates nothing.
type sendOp struct {
	b     []byte
	sa    *sockaddr
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (op *sendOp) sendto(fd uintptr) bool {
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&op.b[0])), uintptr(len(op.b)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&op.sa.raw)), uintptr(op.sa.len))
		if e == unix.EINTR {
			continue
		}
		op.errno = e
		return true // never wait for room: a full buffer drops the datagram
	}
}

// write sends datagram b to p without blocking.
func (s *sock) write(b []byte, p *peer) error {
	op := s.ops.Get().(*sendOp)
	op.b, op.sa = b, &p.sa
	err := s.rc.Write(op.fn)
	e := op.errno
	op.b, op.sa, op.errno = nil, nil, 0
	s.ops.Put(op)
	if err != nil {
		return err
	}
	switch e {
	case 0:
		return nil
	case unix.EAGAIN, unix.ENOBUFS:
		return errWouldBlock
	case unix.EMSGSIZE:
		return errMsgSize
	}
	return os.NewSyscallError("sendto", e)
}

// setDontFragment makes the kernel set DF on every IPv4 datagram and never
// fragment IPv6 ones locally: a datagram over the path MTU fails with
// EMSGSIZE instead.
func setDontFragment(c *net.UDPConn, v6 bool) error {
	return control(c, func(fd int) error {
		if v6 {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO); err != nil {
				return os.NewSyscallError("setsockopt IPV6_MTU_DISCOVER", err)
			}
			return os.NewSyscallError("setsockopt IPV6_DONTFRAG", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1))
		}
		return os.NewSyscallError("setsockopt IP_MTU_DISCOVER", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO))
	})
}

// forceBuffers raises the socket buffers past net.core.rmem_max/wmem_max
// when the process may (CAP_NET_ADMIN), as quic-go and wireguard-go do. It
// is best-effort: without the capability the plain request stands.
func forceBuffers(c *net.UDPConn, size int) {
	control(c, func(fd int) error {
		if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && got < size {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}
		if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && got < size {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		}
		return nil
	})
}

func control(c *net.UDPConn, fn func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// pathMTU returns the MTU of the path to dst as the kernel knows it: the
// route's MTU (its interface's, or a smaller one learned by path MTU
// discovery), read with IP_MTU from a connected UDP socket. Connecting a UDP
// socket only looks up the route; nothing is sent. The socket is closed
// before returning.
func pathMTU(dst netip.AddrPort) (int, error) {
	af, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_MTU
	var sa unix.Sockaddr
	port := int(dst.Port())
	if port == 0 {
		port = 9 // any port does: only the route matters
	}
	if dst.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: port, Addr: dst.Addr().As4()}
	} else {
		af, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_MTU
		s6 := &unix.SockaddrInet6{Port: port, Addr: dst.Addr().As16()}
		if z := dst.Addr().Zone(); z != "" {
			id, err := zoneIndex(z)
			if err != nil {
				return 0, err
			}
			s6.ZoneId = id
		}
		sa = s6
	}
	fd, err := unix.Socket(af, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sa); err != nil {
		return 0, os.NewSyscallError("connect", err)
	}
	mtu, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt IP_MTU", err)
	}
	return mtu, nil
}
