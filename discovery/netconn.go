package discovery

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// The socket layer on a Config.Net: one socket per family and link from
// Net.ListenMulticastUDP, each joined to its group on its link and sending
// multicast out through it, so that the receiving link is the socket's.
// One-shot queries use Net.ListenPacket's ephemeral sockets.

// linkSocks are one link's sockets on a Net, one per family the link has
// an address of.
type linkSocks struct {
	l      *link
	c4, c6 net.PacketConn
	closed atomic.Bool
}

func (s *linkSocks) close() error {
	s.closed.Store(true)
	var errs []error
	for _, c := range []net.PacketConn{s.c4, s.c6} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// openNetConn is openConn on nw.
func openNetConn(nw Net, links []*link, port int, log *slog.Logger, stats *counters) (*mconn, error) {
	if log == nil {
		log = (*Config)(nil).logger()
	}
	c := &mconn{nw: nw, joined: port != 0, links: links, byIdx: map[int]*link{}, log: log, stats: stats}
	for _, l := range links {
		c.byIdx[l.ifi.Index] = l
	}
	if port == 0 {
		c4, err4 := nw.ListenPacket("udp4", "0.0.0.0:0")
		c6, err6 := nw.ListenPacket("udp6", "[::]:0")
		if err4 != nil && err6 != nil {
			return nil, errors.Join(errors.New("discovery: opening the one-shot sockets"), err4, err6)
		}
		c.conn, c.conn6 = c4, c6
		if err4 != nil {
			c.conn = nil
		}
		if err6 != nil {
			c.conn6 = nil
		}
		return c, nil
	}
	c.socks = map[int]*linkSocks{}
	for _, l := range links {
		s, err := c.openLink(l)
		if err != nil {
			c.close()
			return nil, errors.Join(errors.New("discovery: joining the mDNS group on "+l.name()), err)
		}
		c.socks[l.ifi.Index] = s
	}
	return c, nil
}

// openLink opens l's sockets: it fails only if no family could be joined.
func (c *mconn) openLink(l *link) (*linkSocks, error) {
	s := &linkSocks{l: l}
	has4, has6 := l.families()
	var err4, err6 error
	if has4 {
		s.c4, err4 = c.nw.ListenMulticastUDP("udp4", &l.ifi, mdnsGroupAddr)
	}
	if has6 {
		s.c6, err6 = c.nw.ListenMulticastUDP("udp6", &l.ifi, mdnsGroup6Addr)
	}
	if err4 != nil {
		s.c4 = nil
	}
	if err6 != nil {
		s.c6 = nil
	}
	if s.c4 == nil && s.c6 == nil {
		err := errors.Join(err4, err6)
		if err == nil {
			err = errors.New("the interface has no address")
		}
		return nil, err
	}
	if err := errors.Join(err4, err6); err != nil {
		c.log.Debug("mdns: one family not joined", "iface", l.name(), "err", err)
	}
	return s, nil
}

// closeNet closes the links' sockets (close closes conn and conn6).
func (c *mconn) closeNet() error {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	var errs []error
	for _, s := range c.socks {
		errs = append(errs, s.close())
	}
	c.socks, c.readers = nil, nil // and setNetLinksLocked opens no more
	return errors.Join(errs...)
}

// setNetLinksLocked opens the sockets of links new in byIdx and closes
// those of links gone from it.
func (c *mconn) setNetLinksLocked(byIdx map[int]*link) {
	if c.socks == nil {
		return // one-shot sockets: not per link
	}
	for idx, s := range c.socks {
		if byIdx[idx] == nil {
			s.close()
			delete(c.socks, idx)
		}
	}
	for idx, l := range byIdx {
		if c.socks[idx] != nil {
			continue
		}
		s, err := c.openLink(l)
		if err != nil {
			c.log.Warn("mdns: cannot join the mDNS group", "iface", l.name(), "err", err)
			continue
		}
		c.socks[idx] = s
		if c.readers != nil {
			c.readers(s)
		}
	}
}

// startNet reads every socket, and those of links joined later, until
// done or close.
func (c *mconn) startNet(wg *sync.WaitGroup, out chan<- inbound, done <-chan struct{}) {
	read := func(pc net.PacketConn, ifIndex int, closed *atomic.Bool) {
		wg.Go(func() {
			c.readLoop(out, done, func(b []byte) (int, int, net.IP, net.Addr, error) {
				n, src, err := pc.ReadFrom(b)
				if err != nil && closed != nil && closed.Load() {
					err = net.ErrClosed
				}
				return n, ifIndex, nil, src, err
			})
		})
	}
	for _, pc := range []net.PacketConn{c.conn, c.conn6} {
		if pc != nil {
			read(pc, 0, nil)
		}
	}
	c.lmu.Lock()
	defer c.lmu.Unlock()
	c.readers = func(s *linkSocks) {
		for _, pc := range []net.PacketConn{s.c4, s.c6} {
			if pc != nil {
				read(pc, s.l.ifi.Index, &s.closed)
			}
		}
	}
	for _, s := range c.socks {
		c.readers(s)
	}
}

// sendNetMulticast sends b to the mDNS group of each family on l.
func (c *mconn) sendNetMulticast(l *link, b []byte) error {
	c.lmu.RLock()
	c4, c6 := c.conn, c.conn6
	if s := c.socks[l.ifi.Index]; s != nil {
		c4, c6 = s.c4, s.c6
	} else if c.socks != nil {
		c4, c6 = nil, nil
	}
	c.lmu.RUnlock()
	var errs []error
	sent := false
	for _, x := range []struct {
		pc  net.PacketConn
		dst *net.UDPAddr
	}{{c4, mdnsGroupAddr}, {c6, mdnsGroup6Addr}} {
		if x.pc == nil {
			continue
		}
		if _, err := x.pc.WriteTo(b, x.dst); err != nil {
			errs = append(errs, err)
		} else {
			sent = true
		}
	}
	switch {
	case sent:
		if len(errs) > 0 {
			c.log.Debug("mdns: multicast send failed on one family", "iface", l.name(), "err", errors.Join(errs...))
		}
		return nil
	case len(errs) == 0:
		return errors.New("discovery: no socket on " + l.name())
	}
	return errors.Join(errs...)
}

// sendNetUnicast sends b to dst from a socket of its family: the one-shot
// socket, or that of the link dst is on, or of any link.
func (c *mconn) sendNetUnicast(b []byte, dst *net.UDPAddr) error {
	is4 := dst.IP.To4() != nil
	pick := func(c4, c6 net.PacketConn) net.PacketConn {
		if is4 {
			return c4
		}
		return c6
	}
	c.lmu.RLock()
	pc := pick(c.conn, c.conn6)
	if pc == nil {
		a := dst.AddrPort().Addr()
		for _, s := range c.socks {
			if p := pick(s.c4, s.c6); p != nil && (pc == nil || onLink(s.l, a)) {
				pc = p
			}
		}
	}
	c.lmu.RUnlock()
	if pc == nil {
		return errors.New("discovery: no socket for " + dst.String())
	}
	_, err := pc.WriteTo(b, dst)
	return err
}
