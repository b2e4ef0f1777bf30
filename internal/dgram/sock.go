package dgram

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
)

// slotSize is the read buffer of one datagram: the largest UDP payload
// (65507 bytes over IPv4, 65527 over IPv6) fits, so the OS never cuts an
// honest datagram.
const slotSize = 1 << 16

var (
	// errWouldBlock: the socket's send buffer is full. Send drops the
	// datagram rather than wait.
	errWouldBlock = errors.New("send buffer full")
	// errMsgSize: the OS refused a datagram larger than the path MTU
	// (EMSGSIZE, because don't-fragment is set).
	errMsgSize = errors.New("datagram larger than the path MTU")
)

// packet is one datagram read from the socket.
type packet struct {
	buf   []byte // the slot, slotSize bytes
	n     int    // bytes read
	from  netip.AddrPort
	trunc bool // the OS cut it to fit buf
}

// peer is where a flow sends: one remote address, with what is derived from
// it. A flow replaces its peer, never modifies it (but for the cached size).
type peer struct {
	addr netip.AddrPort
	sa   sockaddr

	// The flow's maximum payload towards addr, from the path MTU; 0 until
	// computed. mtuAt is when (UnixNano).
	maxSize atomic.Int64
	mtuAt   atomic.Int64
}

func newPeer(addr netip.AddrPort) (*peer, error) {
	sa, err := makeSockaddr(addr)
	if err != nil {
		return nil, err
	}
	return &peer{addr: addr, sa: sa}, nil
}

// zoneIndex returns the interface index a zone names: a number, or an
// interface name looked up in the calling thread's network namespace.
func zoneIndex(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("nearnet: datagram peer zone %q: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}

// sameAddr reports whether a and b are one address and port: equal, or the
// same IPv6 address with its zone given once by interface name and once by
// index (a peer dialled as "%eth0" answers from "%2" when the interface's
// name cannot be looked up).
func sameAddr(a, b netip.AddrPort) bool {
	if a == b {
		return true
	}
	za, zb := a.Addr().Zone(), b.Addr().Zone()
	if a.Port() != b.Port() || za == "" || zb == "" || a.Addr().WithZone("") != b.Addr().WithZone("") {
		return false
	}
	ia, erra := zoneIndex(za)
	ib, errb := zoneIndex(zb)
	return erra == nil && errb == nil && ia == ib
}
