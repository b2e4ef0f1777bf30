package tunnel

import (
	"errors"
	"net"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/nearnet/nearnet/discovery"
)

// InterfaceName is the name of the stack's one interface, the Device, as
// its [Stack.Discovery] network lists it.
const InterfaceName = "tunnel"

// Discovery returns the stack as a network for mDNS (discovery.Config.Net)
// when Options.Multicast says the Device carries multicast, else nil. A
// nearnet node on the stack alone (nearnet.Config.Tunnel) then advertises
// and browses over it, through the Device only.
func (st *Stack) Discovery() discovery.Net {
	if !st.multicast {
		return nil
	}
	return mdnsNet{st}
}

// mdnsNet is a Stack as a discovery.Net: one interface, the NIC, with the
// stack's addresses.
type mdnsNet struct{ st *Stack }

func (m mdnsNet) iface() net.Interface {
	return net.Interface{Index: nicID, MTU: m.st.mtu, Name: InterfaceName, Flags: net.FlagUp | net.FlagMulticast | net.FlagRunning}
}

func (m mdnsNet) Interfaces() ([]net.Interface, error) { return []net.Interface{m.iface()}, nil }

func (m mdnsNet) InterfaceAddrs(ifi *net.Interface) ([]net.Addr, error) {
	if ifi.Index != nicID {
		return nil, errNoInterface
	}
	out := make([]net.Addr, 0, len(m.st.addrs))
	for _, p := range m.st.addrs {
		bits := 32
		if p.Addr().Is6() {
			bits = 128
		}
		out = append(out, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)})
	}
	return out, nil
}

var errNoInterface = errors.New("tunnel: the stack has one interface, index 1")

// ListenMulticastUDP opens a UDP socket on group's port, shared (as
// SO_REUSEPORT) with the stack's other such sockets, joined to group on
// the stack's interface, sending multicast there with a TTL of 255 and
// looping it back to the stack's own members.
func (m mdnsNet) ListenMulticastUDP(network string, ifi *net.Interface, group *net.UDPAddr) (net.PacketConn, error) {
	fail := func(err error) (net.PacketConn, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: group, Err: err}
	}
	if ifi == nil || ifi.Index != nicID {
		return fail(errNoInterface)
	}
	proto := ipv4.ProtocolNumber
	switch {
	case network == "udp4" && group.IP.To4() != nil && m.st.v4:
	case network == "udp6" && group.IP.To4() == nil && m.st.v6:
		proto = ipv6.ProtocolNumber
	default:
		return fail(syscall.EAFNOSUPPORT)
	}
	ga := tcpip.AddrFromSlice(group.IP.To16())
	if proto == ipv4.ProtocolNumber {
		ga = tcpip.AddrFromSlice(group.IP.To4())
	}
	var wq waiter.Queue
	ep, terr := m.st.s.NewEndpoint(udp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return fail(tcpErr(terr))
	}
	ep.SocketOptions().SetReuseAddress(true)
	ep.SocketOptions().SetReusePort(true)
	ep.SocketOptions().SetMulticastLoop(true)
	steps := []func() tcpip.Error{
		func() tcpip.Error { return ep.Bind(tcpip.FullAddress{Port: uint16(group.Port)}) },
		func() tcpip.Error { return ep.SetSockOpt(&tcpip.AddMembershipOption{NIC: nicID, MulticastAddr: ga}) },
		func() tcpip.Error { return ep.SetSockOpt(&tcpip.MulticastInterfaceOption{NIC: nicID}) },
		func() tcpip.Error { return ep.SetSockOptInt(tcpip.MulticastTTLOption, 255) },
	}
	for _, step := range steps {
		if terr := step(); terr != nil {
			ep.Close()
			return fail(tcpErr(terr))
		}
	}
	return &udpConn{UDPConn: gonet.NewUDPConn(&wq, ep), ep: ep}, nil
}

func (m mdnsNet) ListenPacket(network, address string) (net.PacketConn, error) {
	return m.st.ListenPacket(network, address)
}
