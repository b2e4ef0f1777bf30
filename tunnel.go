package nearnet

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/nearnet/nearnet/internal/advert"
)

// ErrNoDiscovery is returned by Browse and Resolve (and so Connect by
// name) on a node inside a tunnel only (Config.Tunnel without
// TunnelWithHost) whose device carries no multicast (no Discovery method,
// or it returns nil: tunnel.Options.Multicast off). Such a node reaches its
// peers by address.
var ErrNoDiscovery = errors.New("nearnet: no discovery inside this tunnel (it carries no multicast: tunnel.Options.Multicast): connect by address")

// Tunnel is what Config.Tunnel takes: a userspace TCP/IP stack whose
// packets go where the application says. Package tunnel's *tunnel.Stack is
// one (over gVisor's netstack); it is an interface so that a program that
// runs no tunnel does not link a TCP/IP stack. Addresses are numeric.
type Tunnel interface {
	// DialContext, Listen and ListenPacket are the net package's, on the
	// stack: "tcp" connections and listeners, "udp", "udp4" and "udp6"
	// sockets whose WriteTo takes a *net.UDPAddr.
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	Listen(network, address string) (net.Listener, error)
	ListenPacket(network, address string) (net.PacketConn, error)
	// MTU is the largest IP packet the stack's device carries.
	MTU() int
	// Contains reports whether ip is on one of the stack's networks:
	// with TunnelWithHost, those addresses are dialed through the stack.
	Contains(ip netip.Addr) bool
}

// tunnelOnly reports whether every socket of the node is the stack's.
func (c *Config) tunnelOnly() bool { return c.Tunnel != nil && !c.TunnelWithHost }

// noDiscovery: inside a tunnel alone that offers no network for mDNS.
func (c *Config) noDiscovery() bool { return c.tunnelOnly() && advert.TunnelNet(c.Tunnel) == nil }
