package transport

import (
	"net"
	"net/netip"
	"strconv"
)

// CheckZone fails, with a [*net.AddrError] naming the zone, when addr is an
// IPv6 address whose zone names no network interface of this host
// ("[fe80::1%nosuch]:7000"): the system's own error ("invalid argument",
// or "network is unreachable" over UDP) does not say what is wrong. A
// numeric zone is left to the system. Transports call it before dialling.
func CheckZone(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().Zone() == "" {
		return nil
	}
	z := ap.Addr().Zone()
	if _, err := strconv.ParseUint(z, 10, 32); err == nil {
		return nil
	}
	if _, err := net.InterfaceByName(z); err != nil {
		return &net.AddrError{Err: "no network interface named " + strconv.Quote(z) + " (the zone after % names the interface a link-local address is reached through)", Addr: addr}
	}
	return nil
}
