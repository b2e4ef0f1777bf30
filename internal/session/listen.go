package session

import (
	"net"
	"strconv"
)

// ListenAddr is the address to listen on for addr (Config.ListenAddr):
// ":0" if empty, and on 127.0.0.1 when no host is given and discovery
// stays on loopback (loopback), so that the listener does too.
func ListenAddr(addr string, loopback bool) string {
	if addr == "" {
		addr = ":0"
	}
	if host, port, _ := net.SplitHostPort(addr); host == "" && loopback {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Port is the port number of a listener's address.
func Port(a net.Addr) int {
	_, port, _ := net.SplitHostPort(a.String())
	p, _ := strconv.Atoi(port)
	return p
}
