package discovery

import (
	"errors"
	"net"
)

var errNoSuchInterface = errors.New("no such network interface")

// Net is a network other than the host's for mDNS to run on: the
// interfaces it has and the UDP sockets it opens. A userspace TCP/IP stack
// is one (package tunnel's Stack.Discovery): its Responders and
// Browsers then send and receive every packet through the stack, and never
// touch the host's sockets or interfaces. Set it in Config.Net; nil means
// the host's network and the sockets described in the package doc.
//
// Implementations are safe for concurrent use.
type Net interface {
	// Interfaces returns the network's interfaces, as net.Interfaces does
	// the host's; Config.Interfaces names them.
	Interfaces() ([]net.Interface, error)

	// InterfaceAddrs returns ifi's unicast addresses as *net.IPNet, as
	// ifi.Addrs does on the host.
	InterfaceAddrs(ifi *net.Interface) ([]net.Addr, error)

	// ListenMulticastUDP opens a UDP socket of network "udp4" or "udp6"
	// bound to group's port on every address, sharing the port with any
	// other socket so opened (as SO_REUSEPORT does), joined to group on
	// ifi, with multicast sent to group leaving through ifi with a TTL
	// (hop limit) of 255 and looped back to the network's own members.
	// Its ReadFrom returns a *net.UDPAddr, and its WriteTo takes one.
	ListenMulticastUDP(network string, ifi *net.Interface, group *net.UDPAddr) (net.PacketConn, error)

	// ListenPacket opens a UDP socket on an ephemeral port, as
	// net.ListenPacket("udp4", "0.0.0.0:0") does: network is "udp4" or
	// "udp6". One-shot queries go out and come back on it.
	ListenPacket(network, address string) (net.PacketConn, error)
}

// hostNet is the host's interfaces (its sockets are opened in conn.go).
type hostNet struct{}

func (hostNet) Interfaces() ([]net.Interface, error) { return net.Interfaces() }
func (hostNet) InterfaceAddrs(ifi *net.Interface) ([]net.Addr, error) {
	return ifi.Addrs()
}
func (hostNet) ListenMulticastUDP(network string, ifi *net.Interface, group *net.UDPAddr) (net.PacketConn, error) {
	return net.ListenMulticastUDP(network, ifi, group)
}
func (hostNet) ListenPacket(network, address string) (net.PacketConn, error) {
	return net.ListenPacket(network, address)
}

// netOf is cfg's network: Config.Net, or the host's.
func (c *Config) netOf() Net {
	if c == nil || c.Net == nil {
		return hostNet{}
	}
	return c.Net
}

// isHost reports whether nw is the host's network, on which conn.go opens
// its own sockets.
func isHost(nw Net) bool {
	_, ok := nw.(hostNet)
	return ok
}

// interfaceByIndex finds nw's interface with index idx.
func interfaceByIndex(nw Net, idx int) (*net.Interface, error) {
	if isHost(nw) {
		return net.InterfaceByIndex(idx)
	}
	all, err := nw.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Index == idx {
			return &all[i], nil
		}
	}
	return nil, &net.OpError{Op: "route", Net: "ip+net", Err: errNoSuchInterface}
}

// interfaceByName finds nw's interface named name.
func interfaceByName(nw Net, name string) (*net.Interface, error) {
	if isHost(nw) {
		return net.InterfaceByName(name)
	}
	all, err := nw.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, &net.OpError{Op: "route", Net: "ip+net", Err: errNoSuchInterface}
}
