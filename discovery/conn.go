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
	"time"

	"golang.org/x/net/ipv4"
)

// The socket layer: one IPv4 UDP socket bound to 0.0.0.0:5353 with
// SO_REUSEADDR/SO_REUSEPORT (so several responders and browsers, in one
// process or several, share the port and all receive the multicast traffic),
// joined to 224.0.0.251 on each selected interface. The receiving interface
// comes from IP_PKTINFO control messages; outgoing multicast picks its
// interface with IP_MULTICAST_IF, which is what makes a plain Linux "lo"
// (no MULTICAST flag) work.

const mdnsPort = 5353

var mdnsGroupAddr = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: mdnsPort}

// Stats counts what a [Responder] or [Browser] received. All counts are
// totals since it was created.
type Stats struct {
	// Packets is the number of mDNS packets received on the selected
	// interfaces.
	Packets uint64
	// BadPackets counts packets dropped whole because their header or a
	// question could not be decoded.
	BadPackets uint64
	// BadRecords counts resource records skipped because they were
	// malformed; the rest of their packet was still used.
	BadRecords uint64
}

type counters struct {
	packets, badPackets, badRecords atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{Packets: c.packets.Load(), BadPackets: c.badPackets.Load(), BadRecords: c.badRecords.Load()}
}

// inbound is one decoded packet and where it came from.
type inbound struct {
	p          *packet
	link       *link
	src        netip.AddrPort
	unicastDst bool // addressed to one of our unicast addresses, not the group
	at         time.Time
}

// mconn is a UDP socket for mDNS. Its methods are safe for concurrent use.
type mconn struct {
	conn   net.PacketConn
	pc     *ipv4.PacketConn
	joined bool // joins the group on its links (port 5353)
	hasCM  bool
	log    *slog.Logger
	stats  *counters

	lmu   sync.RWMutex // guards links and byIdx, which setLinks changes
	links []*link
	byIdx map[int]*link

	wmu sync.Mutex // serializes SetMulticastInterface+WriteTo pairs
}

// openConn opens an mDNS socket on the links. With port 5353 it binds the
// shared mDNS port and joins the group; with port 0 it binds an ephemeral
// port for one-shot (legacy unicast) queries and joins nothing.
func openConn(links []*link, port int, log *slog.Logger, stats *counters) (*mconn, error) {
	lc := net.ListenConfig{}
	if port != 0 {
		lc.Control = reuseControl
	}
	conn, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	c := &mconn{conn: conn, pc: ipv4.NewPacketConn(conn), joined: port != 0, links: links, byIdx: map[int]*link{}, log: log, stats: stats}
	for _, l := range links {
		c.byIdx[l.ifi.Index] = l
	}
	fail := func(what string, err error) (*mconn, error) {
		conn.Close()
		return nil, errors.Join(errors.New("discovery: "+what), err)
	}
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
	if port != 0 {
		for _, l := range links {
			if err := c.pc.JoinGroup(&l.ifi, &net.UDPAddr{IP: mdnsGroupAddr.IP}); err != nil {
				return fail("joining 224.0.0.251 on "+l.name(), err)
			}
		}
	}
	return c, nil
}

func (c *mconn) close() error { return c.conn.Close() }

// setLinks replaces the links the socket serves: it joins the group on
// interfaces new to it and leaves it on those gone from it (an error there
// only means the interface itself is gone). A failed join is logged and
// the link kept: answers still go out on it, and the next change retries.
func (c *mconn) setLinks(links []*link) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	byIdx := make(map[int]*link, len(links))
	for _, l := range links {
		byIdx[l.ifi.Index] = l
	}
	if c.joined {
		group := &net.UDPAddr{IP: mdnsGroupAddr.IP}
		for idx, l := range c.byIdx {
			if byIdx[idx] == nil {
				if err := c.pc.LeaveGroup(&l.ifi, group); err != nil {
					c.log.Debug("mdns: leaving the group", "iface", l.name(), "err", err)
				}
			}
		}
		for idx, l := range byIdx {
			if c.byIdx[idx] == nil {
				if err := c.pc.JoinGroup(&l.ifi, group); err != nil {
					c.log.Warn("mdns: cannot join 224.0.0.251", "iface", l.name(), "err", err)
				}
			}
		}
	}
	c.links, c.byIdx = links, byIdx
}

// readLoop reads packets until the socket is closed or done is closed and
// hands the decoded ones to out.
func (c *mconn) readLoop(out chan<- inbound, done <-chan struct{}) {
	buf := make([]byte, 65536)
	errs := 0
	for {
		n, cm, src, err := c.pc.ReadFrom(buf)
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
		from := netip.AddrPortFrom(sip.Unmap(), uint16(ua.Port))
		l := c.linkFor(cm, from.Addr())
		if l == nil {
			continue // another interface: not ours to answer or learn from
		}
		in := inbound{link: l, src: from, at: time.Now()}
		if cm != nil && cm.Dst != nil && !cm.Dst.IsMulticast() {
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

func (c *mconn) linkFor(cm *ipv4.ControlMessage, src netip.Addr) *link {
	c.lmu.RLock()
	defer c.lmu.RUnlock()
	if cm != nil && cm.IfIndex != 0 {
		return c.byIdx[cm.IfIndex]
	}
	// No control message (Windows): pick the link whose subnet holds the
	// source, or the only link.
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

func onLink(l *link, a netip.Addr) bool {
	if l.ifi.Flags&net.FlagLoopback != 0 && a.IsLoopback() {
		return true
	}
	for _, p := range l.addrs() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sendMulticast sends b to 224.0.0.251:5353 on link l.
func (c *mconn) sendMulticast(l *link, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.pc.SetMulticastInterface(&l.ifi); err != nil {
		return err
	}
	var cm *ipv4.ControlMessage
	if c.hasCM && l.ifi.Flags&net.FlagLoopback != 0 {
		// Linux picks source addresses of link scope or wider for
		// multicast, and 127.0.0.1 is host scope: without this the
		// packet leaves "lo" from 0.0.0.0 and unicast replies to it
		// (legacy queries) have nowhere to go.
		if ps := l.addrs(); len(ps) > 0 {
			cm = &ipv4.ControlMessage{IfIndex: l.ifi.Index, Src: ps[0].Addr().AsSlice()}
		}
	}
	_, err := c.pc.WriteTo(b, cm, mdnsGroupAddr)
	return err
}

// sendUnicast sends b to dst.
func (c *mconn) sendUnicast(b []byte, dst netip.AddrPort) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.pc.WriteTo(b, nil, net.UDPAddrFromAddrPort(dst))
	return err
}
