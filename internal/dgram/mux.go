package dgram

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Mux is one node's UDP socket for one address family: it serves every
// datagram flow of the node, however many peers and connections it has.
// Incoming datagrams are demultiplexed by the receiver session ID in their
// header (and, for insecure flows, by the peer's address and port too).
//
// A Mux runs two goroutines: a reader, which reads batches of datagrams,
// authenticates them and queues them on their flows, and a sweeper, which
// expires idle flows. Flows add none.
//
// A Mux is safe for concurrent use by multiple goroutines. Close it when
// done; that closes every flow.
type Mux struct {
	cfg   Config
	conn  io.Closer // the socket
	sock  sockIO
	v6    bool
	local netip.AddrPort
	df    error // why don't-fragment could not be set; nil if it is

	mu     sync.RWMutex // guards flows and closed
	flows  map[SessionID]*Flow
	closed bool

	epoch   atomic.Uint64 // sweeps so far; flows note the epoch of their last datagram
	queued  atomic.Int64  // payload bytes waiting in every flow's queue
	stats   muxCounters
	mtus    mtuCache
	backlog bool      // the reader goroutine's: a queue it filled is over half full
	nonce   nonceBuf  // the reader goroutine's: for opening datagrams
	bufs    sync.Pool // of *sendBuf

	stop chan struct{}  // closed by Close: stops the sweeper
	wg   sync.WaitGroup // the reader and the sweeper
}

// sendBufSize holds the largest datagram a flow may send.
const sendBufSize = slotSize + SealedOverhead

// expiryEpochs is how many sweeps (one per quarter of the idle timeout)
// a flow may see without a datagram: the first sweep may come right after
// its last datagram, so it is one more than four.
const expiryEpochs = 5

// Listen opens a Mux on a new UDP socket. network is "udp4" or "udp6";
// laddr is a numeric "ip:port": "0.0.0.0:0" or ":0" for any address and a
// port the OS picks, or the address the node's reliable listener uses. The
// socket has don't-fragment set where the OS allows it (Linux, macOS,
// Windows), so no datagram is ever fragmented by this host.
func Listen(network, laddr string, cfg *Config) (*Mux, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var v6 bool
	switch network {
	case "udp4":
	case "udp6":
		v6 = true
	default:
		return nil, &ConfigError{Field: "network", Value: network, Reason: `want "udp4" or "udp6"`}
	}
	addr, err := parseLocal(laddr, v6)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(c.SocketBuffer)
	conn.SetWriteBuffer(c.SocketBuffer)
	forceBuffers(conn, c.SocketBuffer)
	m := &Mux{
		cfg:   c,
		conn:  conn,
		v6:    v6,
		local: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		flows: make(map[SessionID]*Flow),
		stop:  make(chan struct{}),
	}
	if m.df = setDontFragment(conn, v6); m.df != nil {
		c.Logger.Warn("nearnet: datagrams: cannot set don't-fragment; payloads are still kept under the interface MTU", "err", m.df)
	}
	if m.sock, err = newSock(conn); err != nil {
		conn.Close()
		return nil, err
	}
	m.start()
	return m, nil
}

// NewMux opens a Mux on pc, a UDP socket of network ("udp4" or "udp6") from elsewhere than the host's
// network stack (a userspace TCP/IP stack), which it takes over: nothing
// else may read from it, and Close closes it. Its WriteTo must take a
// *net.UDPAddr. Datagrams are read and sent one a call, and flows keep
// their payloads within mtu, the MTU of every path pc sends on.
func NewMux(network string, pc net.PacketConn, mtu int, cfg *Config) (*Mux, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if network != "udp4" && network != "udp6" {
		return nil, &ConfigError{Field: "network", Value: network, Reason: `want "udp4" or "udp6"`}
	}
	if mtu < minMTU || mtu > 65535 {
		return nil, &ConfigError{Field: "mtu", Value: mtu, Reason: fmt.Sprintf("want %d to 65535", minMTU)}
	}
	ua, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, &ConfigError{Field: "pc", Value: pc.LocalAddr(), Reason: "want a UDP socket"}
	}
	if b, ok := pc.(interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}); ok {
		b.SetReadBuffer(c.SocketBuffer)
		b.SetWriteBuffer(c.SocketBuffer)
	}
	local := ua.AddrPort()
	ps := &packetSock{pc: pc, pkts: []packet{{buf: make([]byte, slotSize)}}}
	m := &Mux{
		cfg:   c,
		conn:  ps,
		sock:  ps,
		v6:    network == "udp6",
		local: local,
		flows: make(map[SessionID]*Flow),
		stop:  make(chan struct{}),
	}
	m.mtus.fixed = mtu
	m.start()
	return m, nil
}

func (m *Mux) start() {
	m.bufs.New = func() any { return &sendBuf{b: make([]byte, sendBufSize)} }
	m.wg.Add(2)
	go m.readLoop()
	go m.sweepLoop()
}

// sockIO is a Mux's socket: the host's (sock, per system) or a
// packetSock.
type sockIO interface {
	read() ([]packet, error)
	write(b []byte, p *peer) error
}

// packetSock is a net.PacketConn from elsewhere than the host's stack, one
// datagram a call each way.
type packetSock struct {
	pc     net.PacketConn
	pkts   []packet
	closed atomic.Bool
}

// Close closes pc; reads fail with net.ErrClosed from then on, whatever
// error pc gives for it.
func (s *packetSock) Close() error {
	s.closed.Store(true)
	return s.pc.Close()
}

func (s *packetSock) read() ([]packet, error) {
	p := &s.pkts[0]
	n, from, err := s.pc.ReadFrom(p.buf)
	if err != nil {
		if s.closed.Load() {
			return nil, net.ErrClosed
		}
		return nil, err
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return s.pkts[:0], nil
	}
	p.n, p.from, p.trunc = n, ua.AddrPort(), false
	return s.pkts, nil
}

func (s *packetSock) write(b []byte, p *peer) error {
	_, err := s.pc.WriteTo(b, net.UDPAddrFromAddrPort(p.addr))
	return err
}

func parseLocal(laddr string, v6 bool) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(laddr)
	if err != nil {
		return netip.AddrPort{}, &ConfigError{Field: "laddr", Value: laddr, Reason: `want a numeric "ip:port", e.g. "0.0.0.0:0"`}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &ConfigError{Field: "laddr", Value: laddr, Reason: "want a port number from 0 to 65535"}
	}
	var a netip.Addr
	if host == "" {
		a = netip.IPv4Unspecified()
		if v6 {
			a = netip.IPv6Unspecified()
		}
	} else if a, err = netip.ParseAddr(host); err != nil {
		return netip.AddrPort{}, &ConfigError{Field: "laddr", Value: laddr, Reason: "want a numeric IP address, not a name"}
	}
	a = unmapFor(a, v6)
	if a.Is6() != v6 {
		return netip.AddrPort{}, &ConfigError{Field: "laddr", Value: laddr, Reason: "want an address of the network's family"}
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// unmapFor turns an IPv4-mapped IPv6 address into IPv4 for an IPv4 socket.
func unmapFor(a netip.Addr, v6 bool) netip.Addr {
	if !v6 && a.Is4In6() {
		return a.Unmap()
	}
	return a
}

// Port returns the socket's UDP port: the port a peer sends to.
func (m *Mux) Port() int { return int(m.local.Port()) }

// LocalAddr returns the socket's local address.
func (m *Mux) LocalAddr() netip.AddrPort { return m.local }

// Stats returns the counters of datagrams that reached no flow.
func (m *Mux) Stats() MuxStats { return m.stats.snapshot() }

// Flows returns the number of open flows.
func (m *Mux) Flows() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.flows)
}

// Close closes the socket and every flow ([ErrClosed]) and waits for the
// Mux's goroutines to end. Closing a closed Mux does nothing.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	flows := m.flows
	m.flows = nil
	m.mu.Unlock()
	close(m.stop)
	err := m.conn.Close()
	m.wg.Wait()
	for _, f := range flows {
		f.finish(ErrClosed)
	}
	return err
}

// readLoop reads batches of datagrams and hands each to its flow until the
// socket is closed.
func (m *Mux) readLoop() {
	defer m.wg.Done()
	var failures int
	for {
		pkts, err := m.sock.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient error (Windows reports ICMP port unreachable as
			// WSAECONNRESET on reads): log the first of a run, and back off
			// from a run so that a persistent one cannot spin.
			failures++
			if failures == 1 {
				m.cfg.Logger.Debug("nearnet: datagram socket read failed", "err", err)
			}
			if failures > 16 {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		failures = 0
		m.backlog = false
		m.mu.RLock()
		for i := range pkts {
			m.dispatch(&pkts[i])
		}
		m.mu.RUnlock()
		if m.backlog {
			// A flow's queue is more than half full: its Receive is
			// falling behind. Give it the processor before reading
			// more: a sender as fast as this reader keeps recvmmsg
			// returning data, so the reader would never block, and on a
			// busy machine the woken Receive would wait for a processor
			// until its queue overflowed, while the socket buffer (far
			// larger) sat empty.
			runtime.Gosched()
		}
	}
}

// dispatch finds the flow of one datagram and hands it over. The caller holds m.mu for reading.
func (m *Mux) dispatch(p *packet) {
	m.stats.received.Add(1)
	if p.trunc {
		m.stats.truncated.Add(1)
		return
	}
	b := p.buf[:p.n]
	h, err := parseHeader(b)
	if err != nil {
		m.stats.malformed.Add(1)
		return
	}
	f := m.flows[h.session]
	if f == nil {
		m.stats.unknownSession.Add(1)
		return
	}
	f.input(h, b, p.from)
}

// sweepLoop expires idle flows, once a quarter of the idle timeout.
func (m *Mux) sweepLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.IdleTimeout / 4)
	defer t.Stop()
	var idle []*Flow
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		e := m.epoch.Add(1)
		idle = idle[:0]
		m.mu.RLock()
		for _, f := range m.flows {
			if e-f.lastActive.Load() >= expiryEpochs {
				idle = append(idle, f)
			}
		}
		m.mu.RUnlock()
		for _, f := range idle {
			m.cfg.Logger.Debug("nearnet: datagram flow expired", "session", f.local, "idle", m.cfg.IdleTimeout)
			f.closeWith(ErrExpired)
		}
		clear(idle)
		m.mtus.expire()
	}
}

// FlowConfig describes one flow to [Mux.NewFlow]: what the reliable
// connection negotiated.
type FlowConfig struct {
	// LocalSession is the session ID this side receives with: non-zero,
	// and not used by another open flow of the Mux. Pick it with
	// [NewSessionID] and tell it to the peer.
	LocalSession SessionID

	// RemoteSession is the session ID the peer receives with: non-zero.
	RemoteSession SessionID

	// RemoteAddr is where the peer's Mux listens. If it is the zero
	// AddrPort, the flow learns it from the datagrams it receives (see
	// [Flow]). IPv4-mapped IPv6 addresses are unmapped for an IPv4 Mux.
	RemoteAddr netip.AddrPort

	// Keys seal and open the flow's datagrams ([KeysFromExporter]). If
	// nil, the flow is insecure: datagrams are plaintext, without
	// authentication or replay protection (security mode "none").
	Keys *Keys
}

// NewFlow opens a flow on the Mux. It fails with [ErrSessionInUse] if
// another open flow receives with the same session ID, with [ErrClosed] if
// the Mux is closed, and with a [*ConfigError] for an invalid field.
func (m *Mux) NewFlow(fc FlowConfig) (*Flow, error) {
	if fc.LocalSession == 0 {
		return nil, &ConfigError{Field: "FlowConfig.LocalSession", Value: fc.LocalSession, Reason: "want a non-zero session ID"}
	}
	if fc.RemoteSession == 0 {
		return nil, &ConfigError{Field: "FlowConfig.RemoteSession", Value: fc.RemoteSession, Reason: "want a non-zero session ID"}
	}
	f := &Flow{
		mux:    m,
		local:  fc.LocalSession,
		remote: fc.RemoteSession,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if fc.RemoteAddr.IsValid() {
		a := unmapFor(fc.RemoteAddr.Addr(), m.v6)
		switch {
		case a.Is6() != m.v6:
			return nil, &ConfigError{Field: "FlowConfig.RemoteAddr", Value: fc.RemoteAddr, Reason: fmt.Sprintf("want an address of the Mux's family (%s)", m.network())}
		case a.IsUnspecified() || a.IsMulticast() || fc.RemoteAddr.Port() == 0:
			return nil, &ConfigError{Field: "FlowConfig.RemoteAddr", Value: fc.RemoteAddr, Reason: "want a unicast address and a non-zero port"}
		}
		p, err := newPeer(netip.AddrPortFrom(a, fc.RemoteAddr.Port()))
		if err != nil {
			return nil, err
		}
		f.peer.Store(p)
	} else {
		f.learn = true
	}
	if fc.Keys != nil {
		f.sealer = newAEAD(&fc.Keys.Send)
		f.opener = newAEAD(&fc.Keys.Recv)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.flows[fc.LocalSession]; ok {
		return nil, ErrSessionInUse
	}
	f.lastActive.Store(m.epoch.Load())
	m.flows[fc.LocalSession] = f
	return f, nil
}

func (m *Mux) network() string {
	if m.v6 {
		return "udp6"
	}
	return "udp4"
}

// sendBuf is scratch space for sending one datagram.
type sendBuf struct {
	b     []byte // sendBufSize bytes
	nonce nonceBuf
}

func (m *Mux) getBuf() *sendBuf  { return m.bufs.Get().(*sendBuf) }
func (m *Mux) putBuf(b *sendBuf) { m.bufs.Put(b) }

// mtuCache remembers path MTUs per destination for a second, so that many
// flows to one peer cost one route lookup.
type mtuCache struct {
	fixed int        // the MTU of every path (NewMux); 0: ask the OS
	mu    sync.Mutex // guards m
	m     map[netip.Addr]mtuEntry
}

type mtuEntry struct {
	mtu int
	at  time.Time
}

const mtuTTL = time.Second

func (c *mtuCache) get(dst netip.AddrPort) (int, error) {
	if c.fixed != 0 {
		return c.fixed, nil
	}
	a := dst.Addr()
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[a]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < mtuTTL {
		return e.mtu, nil
	}
	mtu, err := pathMTU(dst)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 1024 {
		c.m = make(map[netip.Addr]mtuEntry)
	}
	c.m[a] = mtuEntry{mtu, now}
	return mtu, nil
}

func (c *mtuCache) forget(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, a)
}

func (c *mtuCache) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, e := range c.m {
		if time.Since(e.at) >= mtuTTL {
			delete(c.m, a)
		}
	}
}
