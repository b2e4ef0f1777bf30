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
// Discovery: a node inside a tunnel is reached by address, and where the
// Device carries multicast (Options.Multicast: a Pipe does, a hub-like VPN
// may; a point-to-point one usually does not) it also advertises and
// browses with mDNS over the stack ([Stack.Discovery]), never on the
// host's interfaces.
package tunnel
