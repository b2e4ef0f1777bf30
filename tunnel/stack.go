package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Options configure a [Stack].
type Options struct {
	// Addrs are the stack's own addresses with the prefix of the network
	// each is on ("10.9.0.2/24", "fd00::2/64"): at least one, IPv4 and IPv6
	// alike. Every destination is routed to the Device; Contains tells
	// which addresses are on the stack's networks.
	Addrs []netip.Prefix

	// MTU is the largest packet the Device carries. If zero, 1500; at
	// least 1280 (IPv6's minimum), at most 65535. Between two stacks on a
	// Pipe, which is memory, a larger one costs nothing and saves per
	// packet work: at 65535, TCP moves 45 times fewer packets than at
	// 1500 (on a 2-core machine, 3x the stream throughput of nearnet's
	// sessions).
	MTU int

	// Multicast says that the Device carries multicast between the stack
	// and its peers: a packet to 224.0.0.251 or ff02::fb reaches each
	// peer's stack, as on a LAN. Then [Stack.Discovery] is the stack as a
	// network for mDNS, and a nearnet node on it alone advertises and
	// browses through the Device. A Pipe carries it (each end is the
	// other's one peer), and so does a Device that floods multicast to
	// every member of the tunnel (a layer-2 or hub-like VPN). A TUN device
	// carries it to the host's own mDNS sockets joined on that interface
	// (Avahi on it), not beyond: the kernel does not forward multicast
	// between interfaces. A point-to-point VPN to a server usually does not
	// carry it: leave Multicast false there, and peers connect by address
	// (mDNS would find nothing). If false, the stack has no discovery.
	Multicast bool
}

// OptionsError is a bad Options field.
type OptionsError struct {
	Field  string
	Value  any
	Reason string
}

func (e *OptionsError) Error() string {
	return fmt.Sprintf("tunnel: Options.%s = %v: %s", e.Field, e.Value, e.Reason)
}

// Stack is a userspace TCP/IP stack on a Device. It is safe for concurrent
// use by multiple goroutines. Close it when done: it closes its Device.
type Stack struct {
	dev   Device
	addrs []netip.Prefix
	mtu   int
	s     *stack.Stack
	ep    *channel.Endpoint
	v4    bool
	v6    bool

	multicast bool // Options.Multicast

	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup
}

const nicID = 1

// outQueue is how many packets the stack may queue for the Device before
// it drops (TCP then resends).
const outQueue = 1024

// New starts a Stack on dev with the addresses of o.
func New(dev Device, o Options) (*Stack, error) {
	if dev == nil {
		return nil, &OptionsError{Field: "Device", Value: nil, Reason: "want a Device"}
	}
	switch {
	case o.MTU == 0:
		o.MTU = 1500
	case o.MTU < 1280 || o.MTU > 65535:
		return nil, &OptionsError{Field: "MTU", Value: o.MTU, Reason: "want 0 (1500) or 1280 to 65535"}
	}
	if len(o.Addrs) == 0 {
		return nil, &OptionsError{Field: "Addrs", Value: o.Addrs, Reason: "want at least one address with its prefix, e.g. 10.9.0.2/24"}
	}
	st := &Stack{dev: dev, mtu: o.MTU, multicast: o.Multicast}
	for _, p := range o.Addrs {
		a := p.Addr().Unmap()
		if !p.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			return nil, &OptionsError{Field: "Addrs", Value: p, Reason: "want a unicast address with its prefix length, without a zone"}
		}
		st.addrs = append(st.addrs, netip.PrefixFrom(a, p.Bits()))
		if a.Is4() {
			st.v4 = true
		} else {
			st.v6 = true
		}
	}
	st.s = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        true,
	})
	_, isPipe := dev.(*pipeEnd)
	if err := st.tune(isPipe); err != nil {
		st.s.Close()
		return nil, err
	}
	st.ep = channel.New(outQueue, uint32(o.MTU), "")
	if isPipe {
		// A Pipe's packets are in memory: nothing to verify checksums
		// against, and GRO (readLoop) needs the NIC not to check the
		// headers it rewrites.
		st.ep.LinkEPCapabilities |= stack.CapabilityRXChecksumOffload
	}
	if err := st.s.CreateNIC(nicID, st.ep); err != nil {
		st.s.Close()
		return nil, fmt.Errorf("tunnel: creating the interface: %s", err)
	}
	var routes []tcpip.Route
	for _, p := range st.addrs {
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{
			Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits()}}
		if err := st.s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			st.s.Close()
			return nil, &OptionsError{Field: "Addrs", Value: p, Reason: err.String()}
		}
	}
	if st.v4 {
		routes = append(routes, tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	}
	if st.v6 {
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	st.s.SetRouteTable(routes)
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	st.wg.Add(2)
	go st.readLoop()
	go st.writeLoop(ctx)
	return st, nil
}

// tune turns on what a LAN's throughput needs: SACK, and send and receive
// buffers that grow to a few MiB. On a Pipe, which neither loses nor
// reorders (memory), loss recovery is SACK's (RFC 6675) rather than
// RACK's: RACK's bookkeeping of each segment's send time and each ACK
// costs about a quarter of the stack's CPU per byte at MTU 1500, for
// losses that do not happen there.
func (st *Stack) tune(pipe bool) error {
	sack := tcpip.TCPSACKEnabled(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	opts := []tcpip.SettableTransportProtocolOption{&sack, &rcv, &snd, &moderate}
	if pipe {
		noRACK := tcpip.TCPRecovery(0)
		opts = append(opts, &noRACK)
	}
	for _, opt := range opts {
		if err := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return fmt.Errorf("tunnel: TCP option %T: %s", opt, err)
		}
	}
	return nil
}

// readLoop hands the Device's packets to the stack until it fails. From a
// Pipe it takes a batch at a time, as the other stack's buffers, and
// coalesces consecutive TCP segments of a connection (GRO) before the
// stack sees them: the stack's TCP then handles one segment of up to
// 64 KiB instead of dozens.
func (st *Stack) readLoop() {
	defer st.wg.Done()
	var g gro.GRO
	pipe, isPipe := st.dev.(*pipeEnd)
	g.Init(isPipe)
	g.Dispatcher = injector{st.ep}
	if !isPipe {
		buf := make([]byte, st.mtu)
		for {
			n, err := st.dev.ReadPacket(buf)
			if err != nil {
				return
			}
			if n > 0 {
				st.inject(&g, buffer.MakeWithData(buf[:n]), false)
			}
		}
	}
	for {
		bs, err := pipe.readBatch()
		if err != nil {
			return
		}
		for _, b := range bs {
			st.inject(&g, b, true)
		}
		freeBatch(bs)
		g.Flush()
	}
}

// inject hands the packet in b (which it takes) to g; intact says that
// its checksums need no check (a Pipe's).
func (st *Stack) inject(g *gro.GRO, b buffer.Buffer, intact bool) {
	var proto tcpip.NetworkProtocolNumber
	if v, ok := b.PullUp(0, 1); ok {
		switch v.AsSlice()[0] >> 4 {
		case 4:
			proto = ipv4.ProtocolNumber
		case 6:
			proto = ipv6.ProtocolNumber
		}
	}
	if proto == 0 {
		b.Release()
		return // not IP: a network would drop it too
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: b})
	pkt.NetworkProtocolNumber = proto
	pkt.RXChecksumValidated = intact
	g.Enqueue(pkt)
	pkt.DecRef()
}

// injector hands GRO's packets to the stack.
type injector struct{ ep *channel.Endpoint }

func (i injector) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	i.ep.InjectInbound(proto, pkt)
}

func (injector) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// writeLoop sends the stack's packets through the Device until Close; to
// a Pipe, as they are, without a copy, and all that are waiting at once.
func (st *Stack) writeLoop(ctx context.Context) {
	defer st.wg.Done()
	pipe, isPipe := st.dev.(*pipeEnd)
	for {
		pkt := st.ep.ReadContext(ctx)
		if pkt == nil {
			return
		}
		var err error
		if isPipe {
			bs := newBatch()
			size := 0
			for pkt != nil {
				b := pkt.ToBuffer()
				pkt.DecRef()
				bs = append(bs, b)
				if size += int(b.Size()); len(bs) == pipeBatch || size >= pipeBatchBytes {
					break
				}
				pkt = st.ep.Read()
			}
			err = pipe.writeBatch(bs)
		} else {
			v := pkt.ToView()
			pkt.DecRef()
			err = st.dev.WritePacket(v.AsSlice())
			v.Release()
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// Addrs returns the stack's addresses with their prefixes.
func (st *Stack) Addrs() []netip.Prefix { return append([]netip.Prefix(nil), st.addrs...) }

// MTU returns the Device's MTU.
func (st *Stack) MTU() int { return st.mtu }

// Contains reports whether ip is on one of the stack's networks (the
// prefixes of Options.Addrs).
func (st *Stack) Contains(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, p := range st.addrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Close closes the stack's connections and listeners, then the Device, and
// waits for its goroutines.
func (st *Stack) Close() error {
	st.once.Do(func() {
		st.s.Close()
		st.cancel()
		st.dev.Close()
		st.wg.Wait()
		st.s.Wait()
		st.ep.Close()
	})
	return nil
}

// fullAddr turns a numeric "host:port" into the stack's form; host may be
// empty (any address).
func (st *Stack) fullAddr(network, address string) (tcpip.FullAddress, tcpip.NetworkProtocolNumber, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return tcpip.FullAddress{}, 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return tcpip.FullAddress{}, 0, fmt.Errorf("tunnel: bad port in %q", address)
	}
	want4, want6 := network[len(network)-1] == '4', network[len(network)-1] == '6'
	if host == "" {
		// Any address: dual-stack where the stack has both families.
		switch {
		case want4 || !st.v6 && !want6:
			return tcpip.FullAddress{Port: uint16(p)}, ipv4.ProtocolNumber, nil
		default:
			return tcpip.FullAddress{Port: uint16(p)}, ipv6.ProtocolNumber, nil
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return tcpip.FullAddress{}, 0, fmt.Errorf("tunnel: %q: the stack dials numeric addresses only", address)
	}
	a = a.Unmap().WithZone("")
	proto := ipv6.ProtocolNumber
	if a.Is4() {
		proto = ipv4.ProtocolNumber
	}
	if a.Is4() && want6 || a.Is6() && want4 {
		return tcpip.FullAddress{}, 0, fmt.Errorf("tunnel: %q is not a %s address", address, network)
	}
	fa := tcpip.FullAddress{Port: uint16(p)}
	if !a.IsUnspecified() {
		fa.Addr = tcpip.AddrFromSlice(a.AsSlice())
	}
	return fa, proto, nil
}

// DialContext connects to a numeric address ("10.9.0.1:80", "[fd00::1]:80")
// over the stack: network is "tcp", "tcp4" or "tcp6" (a TCP connection) or
// "udp", "udp4" or "udp6" (a connected UDP socket). Once connected, ctx no
// longer matters. A TCP connection has the methods
// SetKeepAliveConfig(net.KeepAliveConfig) error, SetUserTimeout(time.Duration)
// error (TCP_USER_TIMEOUT) and SetLinger(int) error, as the host's have.
func (st *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	fa, proto, err := st.fullAddr(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		c, err := dialTCP(ctx, st.s, fa, proto)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: &net.TCPAddr{IP: net.IP(fa.Addr.AsSlice()), Port: int(fa.Port)}, Err: err}
		}
		return c, nil
	case "udp", "udp4", "udp6":
		c, err := dialUDP(st.s, nil, &fa, proto)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: &net.UDPAddr{IP: net.IP(fa.Addr.AsSlice()), Port: int(fa.Port)}, Err: err}
		}
		return c, nil
	}
	return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
}

// Listen listens for TCP connections on the stack: network is "tcp",
// "tcp4" or "tcp6", address a numeric "host:port" (host empty: every
// address of the stack; port 0: one the stack picks).
func (st *Stack) Listen(network, address string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	fa, proto, err := st.fullAddr(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ln, err := listenTCP(st.s, fa, proto)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: &net.TCPAddr{IP: net.IP(fa.Addr.AsSlice()), Port: int(fa.Port)}, Err: err}
	}
	return ln, nil
}

// ListenPacket opens a UDP socket on the stack: network is "udp", "udp4"
// or "udp6", address as for Listen. Its WriteTo takes a *net.UDPAddr.
func (st *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	fa, proto, err := st.fullAddr(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	c, err := dialUDP(st.s, &fa, nil, proto)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: &net.UDPAddr{IP: net.IP(fa.Addr.AsSlice()), Port: int(fa.Port)}, Err: err}
	}
	return c, nil
}
