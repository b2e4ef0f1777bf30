//go:build !linux

package dgram

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// pathMTU returns the MTU of the interface the route to dst uses: a UDP
// socket connected to dst (which sends nothing, only picks the route and a
// local address) tells the local address, and the interface holding that
// address gives the MTU. The socket is closed before returning.
func pathMTU(dst netip.AddrPort) (int, error) {
	network := "udp4"
	if dst.Addr().Is6() && !dst.Addr().Is4In6() {
		network = "udp6"
	}
	if dst.Port() == 0 {
		dst = netip.AddrPortFrom(dst.Addr(), 9) // any port does: only the route matters
	}
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return 0, err
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	c.Close()
	return ifaceMTU(local)
}

var ifaces struct {
	sync.Mutex // guards the fields below
	at         time.Time
	list       []ifaceAddrs
}

type ifaceAddrs struct {
	mtu      int
	loopback bool
	addrs    []netip.Addr
}

// ifaceMTU returns the MTU of the interface that holds addr, from a table of
// interfaces refreshed at most every 5 seconds.
func ifaceMTU(addr netip.Addr) (int, error) {
	ifaces.Lock()
	defer ifaces.Unlock()
	if time.Since(ifaces.at) > 5*time.Second {
		list, err := net.Interfaces()
		if err != nil {
			return 0, err
		}
		ifaces.list = ifaces.list[:0]
		for _, ifi := range list {
			ia := ifaceAddrs{mtu: ifi.MTU, loopback: ifi.Flags&net.FlagLoopback != 0}
			addrs, _ := ifi.Addrs()
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(n.IP); ok {
						ia.addrs = append(ia.addrs, ip.Unmap())
					}
				}
			}
			ifaces.list = append(ifaces.list, ia)
		}
		ifaces.at = time.Now()
	}
	bare := addr.WithZone("")
	for _, ia := range ifaces.list {
		for _, a := range ia.addrs {
			if a.WithZone("") == bare {
				return ia.mtu, nil
			}
		}
	}
	if addr.IsLoopback() {
		for _, ia := range ifaces.list {
			if ia.loopback {
				return ia.mtu, nil
			}
		}
	}
	return 0, fmt.Errorf("nearnet: no interface holds %s: %w", addr, errors.ErrUnsupported)
}
