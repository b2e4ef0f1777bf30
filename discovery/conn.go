package discovery

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The socket layer: two UDP sockets, one per family, bound to 0.0.0.0:5353
// and [::]:5353 with SO_REUSEADDR/SO_REUSEPORT (so several responders and
// browsers, in one process or several, share the port and all receive the
// multicast traffic), joined to 224.0.0.251 and ff02::fb on each selected
// interface. The receiving interface comes from IP_PKTINFO and IPV6_PKTINFO
// control messages; outgoing multicast picks its interface with
// IP_MULTICAST_IF / IPV6_MULTICAST_IF, which is what makes a plain Linux "lo"
// (no MULTICAST flag) work for IPv4. (Linux does not route IPv6 multicast
// on such an "lo": the first send fails with ENETUNREACH, which is logged at
// debug level, and the link then uses IPv4 alone.)

const mdnsPort = 5353

var (
	mdnsGroupAddr  = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: mdnsPort}
	mdnsGroup6Addr = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: mdnsPort}
)

// Stats counts what a [Responder] or [Browser] received. All counts are
// totals since it was created.
type Stats struct {
	// Packets is the number of mDNS packets received on the selected
	// interfaces, over IPv4 and IPv6.
	Packets uint64
	// BadPackets counts packets dropped whole because their header or a
	// question could not be decoded, or because they came from an IPv6
	// link-local address of another interface.
	BadPackets uint64
	// BadRecords counts resource records skipped because they were
	// malformed; the rest of their packet was still used.
	BadRecords uint64
	// IgnoredAddrs counts address records (A, AAAA) a [Browser] ignored
	// because their address cannot be dialled from the interface they
	// arrived on: an IPv4-mapped IPv6 address in an AAAA record, an
	// unspecified or multicast address, a loopback address from a
	// non-loopback interface, or a link-local one on a loopback interface.
	// The rest of their packet was still used.
	IgnoredAddrs uint64
}

type counters struct {
	packets, badPackets, badRecords, ignoredAddrs atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{Packets: c.packets.Load(), BadPackets: c.badPackets.Load(), BadRecords: c.badRecords.Load(), IgnoredAddrs: c.ignoredAddrs.Load()}
}

// inbound is one decoded packet and where it came from.
type inbound struct {
	p          *packet
	link       *link
	src        netip.AddrPort // an IPv6 link-local source carries its interface as zone
	unicastDst bool           // addressed to one of our unicast addresses, not the group
	at         time.Time
}

// mconn is a pair of UDP sockets for mDNS, one per family. Its methods are
// safe for concurrent use.
type mconn struct {
	conn   net.PacketConn   // IPv4; nil if the system has no IPv4
	pc     *ipv4.PacketConn // on conn
	conn6  net.PacketConn   // IPv6; nil if the system has no IPv6
	pc6    *ipv6.PacketConn // on conn6
	joined bool             // joins the groups on its links (port 5353)
	hasCM  bool             // IPv4 control messages
	log    *slog.Logger
	stats  *counters

	lmu   sync.RWMutex // guards links and byIdx, which setLinks changes
	links []*link
	byIdx map[int]*link

	wmu sync.Mutex // serializes SetMulticastInterface+WriteTo pairs

	// With a Config.Net (netconn.go), nw is it, and conn and conn6 are
	// its sockets with port 0; with port 5353, socks holds each link's
	// (guarded by lmu) and readers starts a reader on a new one.
	nw      Net
	socks   map[int]*linkSocks
	readers func(*linkSocks)
}

// openConn opens mDNS sockets on the links. With port 5353 it binds the
// shared mDNS port and joins the groups; with port 0 it binds ephemeral
// ports for one-shot (legacy unicast) queries and joins nothing. A system
// without IPv6 gets an IPv4 socket only (and the reverse); with neither it
// fails.
func openConn(nw Net, links []*link, port int, log *slog.Logger, stats *counters) (*mconn, error) {
	if !isHost(nw) {
		return openNetConn(nw, links, port, log, stats)
	}
	lc := net.ListenConfig{}
	if port != 0 {
		lc.Control = reuseControl
	}
	if log == nil {
		log = (*Config)(nil).logger()
	}
	c := &mconn{joined: port != 0, links: links, byIdx: map[int]*link{}, log: log, stats: stats}
	for _, l := range links {
		c.byIdx[l.ifi.Index] = l
	}
	fail := func(what string, err error) (*mconn, error) {
		c.close()
		return nil, errors.Join(errors.New("discovery: "+what), err)
	}
	conn4, err4 := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	conn6, err6 := lc.ListenPacket(context.Background(), "udp6", net.JoinHostPort("::", strconv.Itoa(port)))
	if err4 != nil && err6 != nil {
		return fail("opening the mDNS sockets", errors.Join(err4, err6))
	}
	if err4 == nil {
		c.conn, c.pc = conn4, ipv4.NewPacketConn(conn4)
		if err := c.pc.SetMulticastLoopback(true); err != nil {
			return fail("enabling IP_MULTICAST_LOOP", err)
		}
		if err := c.pc.SetMulticastTTL(255); err != nil {
			return fail("setting the multicast TTL", err)
		}
		_ = c.pc.SetTTL(255) // RFC 6762 §11; unicast TTL is best effort
		if err := c.pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err == nil {
			c.hasCM = true
		} else {
			log.Debug("mdns: no IP_PKTINFO, inferring the interface from the source address", "err", err)
		}
	} else {
		log.Debug("mdns: no IPv4 socket", "err", err4)
	}
	if err6 == nil {
		c.conn6, c.pc6 = conn6, ipv6.NewPacketConn(conn6)
		if err := c.pc6.SetMulticastLoopback(true); err != nil {
			return fail("enabling IPV6_MULTICAST_LOOP", err)
		}
		if err := c.pc6.SetMulticastHopLimit(255); err != nil {
			return fail("setting the multicast hop limit", err)
		}
		_ = c.pc6.SetHopLimit(255)
		if err := c.pc6.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
			// Without IPV6_PKTINFO the interface is inferred from the zone
			// of the (link-local) source address.
			log.Debug("mdns: no IPV6_PKTINFO", "err", err)
		}
	} else {
		log.Debug("mdns: no IPv6 socket", "err", err6)
	}
	if port != 0 {
		for _, l := range links {
			if err := c.join(l); err != nil {
				return fail("joining the mDNS group on "+l.name(), err)
			}
		}
	}
	return c, nil
}

// join joins the groups on l. Failing to join ff02::fb (IPv6 disabled on
// the interface) is only logged: IPv4 still works there. Failing to join
// 224.0.0.251 is an error unless IPv6 could be joined.
func (c *mconn) join(l *link) error {
	var err4, err6 error = errors.New("no IPv4 socket"), errors.New("no IPv6 socket")
	if c.pc != nil {
		err4 = c.pc.JoinGroup(&l.ifi, &net.UDPAddr{IP: mdnsGroupAddr.IP})
	}
	if c.pc6 != nil {
		err6 = c.pc6.JoinGroup(&l.ifi, &net.UDPAddr{IP: mdnsGroup6Addr.IP})
	}
	if err6 != nil && c.pc6 != nil {
		c.log.Debug("mdns: cannot join ff02::fb", "iface", l.name(), "err", err6)
	}
	if err4 != nil && err6 != nil {
		return err4
	}
	if err4 != nil && c.pc != nil {
		c.log.Debug("mdns: cannot join 224.0.0.251", "iface", l.name(), "err", err4)
	}
	return nil
}

func (c *mconn) leave(l *link) {
	if c.pc != nil {
		if err := c.pc.LeaveGroup(&l.ifi, &net.UDPAddr{IP: mdnsGroupAddr.IP}); err != nil {
			c.log.Debug("mdns: leaving 224.0.0.251", "iface", l.name(), "err", err)
		}
	}
	if c.pc6 != nil {
		if err := c.pc6.LeaveGroup(&l.ifi, &net.UDPAddr{IP: mdnsGroup6Addr.IP}); err != nil {
			c.log.Debug("mdns: leaving ff02::fb", "iface", l.name(), "err", err)
		}
	}
}

func (c *mconn) close() error {
	var errs []error
	if c.nw != nil {
		errs = append(errs, c.closeNet())
	}
	if c.conn != nil {
		errs = append(errs, c.conn.Close())
	}
	if c.conn6 != nil {
		errs = append(errs, c.conn6.Close())
	}
	return errors.Join(errs...)
}

// setLinks replaces the links the socket serves: it joins the groups on
// interfaces new to it and leaves them on those gone from it (an error
// there only means the interface itself is gone). A failed join is logged
// and the link kept: answers still go out on it, and the next change
// retries.
func (c *mconn) setLinks(links []*link) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	byIdx := make(map[int]*link, len(links))
	for _, l := range links {
		byIdx[l.ifi.Index] = l
	}
	if c.nw != nil {
		c.setNetLinksLocked(byIdx)
	} else if c.joined {
		for idx, l := range c.byIdx {
			if byIdx[idx] == nil {
				c.leave(l)
			}
		}
		for idx, l := range byIdx {
			if c.byIdx[idx] == nil {
				if err := c.join(l); err != nil {
					c.log.Warn("mdns: cannot join the mDNS group", "iface", l.name(), "err", err)
				}
			}
		}
	}
	c.links, c.byIdx = links, byIdx
}

// start reads packets on each socket, one goroutine per family, until the
// socket is closed or done is closed, and hands the decoded ones to out.
func (c *mconn) start(wg *sync.WaitGroup, out chan<- inbound, done <-chan struct{}) {
	if c.nw != nil {
		c.startNet(wg, out, done)
		return
	}
	if c.pc != nil {
		wg.Go(func() {
			c.readLoop(out, done, func(b []byte) (int, int, net.IP, net.Addr, error) {
				n, cm, src, err := c.pc.ReadFrom(b)
				if cm == nil {
					return n, 0, nil, src, err
				}
				return n, cm.IfIndex, cm.Dst, src, err
			})
		})
	}
	if c.pc6 != nil {
		wg.Go(func() {
			c.readLoop(out, done, func(b []byte) (int, int, net.IP, net.Addr, error) {
				n, cm, src, err := c.pc6.ReadFrom(b)
				if cm == nil {
					return n, 0, nil, src, err
				}
				return n, cm.IfIndex, cm.Dst, src, err
			})
		})
	}
}

// readLoop reads packets with read (which returns the receiving interface's
// index, or 0 if unknown, and the destination address, if known).
func (c *mconn) readLoop(out chan<- inbound, done <-chan struct{}, read func([]byte) (int, int, net.IP, net.Addr, error)) {
	buf := make([]byte, 65536)
	errs := 0
	for {
		n, ifIndex, dst, src, err := read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-done:
				return
			default:
			}
			// Transient errors (ICMP port unreachable surfacing as
			// ECONNREFUSED, ENOBUFS): keep reading, but never spin.
			if errs++; errs > 10 {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		errs = 0
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		sip, ok := netip.AddrFromSlice(ua.IP)
		if !ok {
			continue
		}
		sip = sip.Unmap()
		if sip.Is6() && ua.Zone != "" {
			sip = sip.WithZone(ua.Zone)
		}
		from := netip.AddrPortFrom(sip, uint16(ua.Port))
		l := c.linkFor(ifIndex, from.Addr())
		if l == nil {
			continue // another interface: not ours to answer or learn from
		}
		if z := from.Addr().Zone(); z != "" && z != l.name() && z != strconv.Itoa(l.ifi.Index) {
			// A link-local source names the interface it belongs to; one
			// that disagrees with the receiving interface cannot be
			// answered on it.
			c.stats.badPackets.Add(1)
			c.log.Debug("mdns: dropped packet from a link-local address of another interface", "from", from, "iface", l.name())
			continue
		}
		in := inbound{link: l, src: from, at: time.Now()}
		if dst != nil && !dst.IsMulticast() {
			in.unicastDst = true
			if !onLink(l, from.Addr()) {
				continue // RFC 6762 §11: unicast mDNS only from the local link
			}
		}
		c.stats.packets.Add(1)
		// Decode a copy: nothing decoded may alias the read buffer.
		p, err := parsePacket(append([]byte(nil), buf[:n]...))
		if err != nil {
			c.stats.badPackets.Add(1)
			c.log.Debug("mdns: dropped undecodable packet", "from", from, "iface", l.name(), "err", err)
			continue
		}
		if p.bad > 0 {
			c.stats.badRecords.Add(uint64(p.bad))
			c.log.Debug("mdns: skipped malformed records", "from", from, "iface", l.name(), "count", p.bad)
		}
		in.p = p
		select {
		case out <- in:
		case <-done:
			return
		}
	}
}

func (c *mconn) linkFor(ifIndex int, src netip.Addr) *link {
	c.lmu.RLock()
	defer c.lmu.RUnlock()
	if ifIndex != 0 {
		return c.byIdx[ifIndex]
	}
	// No control message (Windows): pick the link named by the source's
	// zone, or whose subnet holds the source, or the only link.
	for _, l := range c.links {
		if z := src.Zone(); z != "" && (z == l.name() || z == strconv.Itoa(l.ifi.Index)) {
			return l
		}
	}
	for _, l := range c.links {
		if onLink(l, src) {
			return l
		}
	}
	if len(c.links) == 1 {
		return c.links[0]
	}
	return nil
}

// onLink reports whether a is on l's link: loopback on a loopback
// interface, an IPv6 link-local address of l (by zone), or an address in
// one of l's prefixes.
func onLink(l *link, a netip.Addr) bool {
	if l.ifi.Flags&net.FlagLoopback != 0 && a.IsLoopback() {
		return true
	}
	if a.Is6() && a.IsLinkLocalUnicast() {
		return a.Zone() == l.name() || a.Zone() == strconv.Itoa(l.ifi.Index)
	}
	a = a.WithZone("")
	for _, p := range l.addrs() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sendMulticast sends b to the mDNS group of each family l has an address
// of (IPv4 for a loopback interface), on link l. It fails only if no
// family could send; a family that failed beside one that worked is
// logged at debug level.
func (c *mconn) sendMulticast(l *link, b []byte) error {
	if c.nw != nil {
		return c.sendNetMulticast(l, b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	has4, has6 := l.families()
	var errs []error
	sent := false
	if c.pc != nil && (has4 || l.loopback()) {
		if err := c.send4(l, b); err != nil {
			errs = append(errs, err)
		} else {
			sent = true
		}
	}
	if c.pc6 != nil && has6 && !l.mcast6Refused.Load() {
		if err := c.send6(l, b); err != nil && l.loopback() && errors.Is(err, syscall.ENETUNREACH) {
			l.mcast6Refused.Store(true)
			c.log.Debug("mdns: the kernel refuses IPv6 multicast on this loopback interface; IPv4 only there", "iface", l.name(), "err", err)
		} else if err != nil {
			errs = append(errs, err)
		} else {
			sent = true
		}
	}
	if sent || len(errs) == 0 {
		if len(errs) > 0 {
			c.log.Debug("mdns: multicast send failed on one family", "iface", l.name(), "err", errors.Join(errs...))
		}
		return nil
	}
	return errors.Join(errs...)
}

func (c *mconn) send4(l *link, b []byte) error {
	if err := c.pc.SetMulticastInterface(&l.ifi); err != nil {
		return err
	}
	var cm *ipv4.ControlMessage
	if c.hasCM && l.loopback() {
		// Linux picks source addresses of link scope or wider for
		// multicast, and 127.0.0.1 is host scope: without this the
		// packet leaves "lo" from 0.0.0.0 and unicast replies to it
		// (legacy queries) have nowhere to go.
		for _, p := range l.addrs() {
			if p.Addr().Is4() {
				cm = &ipv4.ControlMessage{IfIndex: l.ifi.Index, Src: p.Addr().AsSlice()}
				break
			}
		}
	}
	_, err := c.pc.WriteTo(b, cm, mdnsGroupAddr)
	return err
}

func (c *mconn) send6(l *link, b []byte) error {
	if err := c.pc6.SetMulticastInterface(&l.ifi); err != nil {
		return err
	}
	dst := &net.UDPAddr{IP: mdnsGroup6Addr.IP, Port: mdnsPort, Zone: l.name()}
	_, err := c.pc6.WriteTo(b, nil, dst)
	return err
}

// sendUnicast sends b to dst, on the socket of dst's family. An IPv6
// link-local dst must carry its zone.
func (c *mconn) sendUnicast(b []byte, dst netip.AddrPort) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ua := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()))
	if c.nw != nil {
		return c.sendNetUnicast(b, ua)
	}
	if dst.Addr().Unmap().Is4() {
		if c.pc == nil {
			return errors.New("discovery: no IPv4 socket")
		}
		_, err := c.pc.WriteTo(b, nil, ua)
		return err
	}
	if c.pc6 == nil {
		return errors.New("discovery: no IPv6 socket")
	}
	_, err := c.pc6.WriteTo(b, nil, ua)
	return err
}
