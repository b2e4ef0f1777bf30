// Package tunnel runs TCP and UDP over a userspace TCP/IP stack whose IP
// packets go wherever the application says: a TUN device, or a pair of
// functions or channels of its own (a VPN client configuring itself inside
// its own tunnel, an app embedding WireGuard, a test harness). The stack is
// gVisor's netstack, the one wireguard-go's tun/netstack wraps.
//
// Start with a [Device] (a [Pipe] end, [OpenTUN], [NewFileDevice],
// [NewFuncDevice] or [NewChanDevice]) and [New] with the stack's own addresses; then
// [Stack.DialContext], [Stack.Listen] and [Stack.ListenPacket] behave like
// the net package's. A nearnet node runs over a Stack when it is given
// one in nearnet.Config.Tunnel: its sessions, streams, datagrams and files
// work as on the host's sockets; only where the packets go differs.
//
// A Stack sends nothing but what its connections send, and nothing through
// the host's network stack: every packet leaves through the Device.
//
// Discovery: a node inside a tunnel is reached by address. A Pipe or a TUN
// device is point-to-point; mDNS would make sense over one only where the
// application forwards multicast (224.0.0.251, ff02::fb) to every peer, as
// a layer-3 hub would, and nearnet's discovery package runs on the host's
// interfaces only, so a node on a Stack alone does not browse or advertise.
package tunnel
