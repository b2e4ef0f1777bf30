//go:build linux

// Package icetest runs ICE agents of one test process on hosts of a
// netns lab: a pion Net whose sockets are opened inside a host's network
// namespace.
package icetest

import (
	"context"
	"net"

	ptransport "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/nearnet/nearnet/internal/netns"
)

// Net opens sockets in host h's namespace: sockets belong to the
// namespace they were made in and keep working from any goroutine, so an
// agent of this process gathers and checks from that host.
type Net struct {
	*stdnet.Net
	h *netns.Host
}

// NewNet returns the Net of host h, its interfaces read in h.
func NewNet(h *netns.Host) (*Net, error) {
	n := &Net{h: h}
	err := h.Do(func() error {
		var err error
		n.Net, err = stdnet.NewNet()
		return err
	})
	return n, err
}

func in[T any](n *Net, f func() (T, error)) (T, error) {
	var v T
	err := n.h.Do(func() error {
		var err error
		v, err = f()
		return err
	})
	return v, err
}

// UpdateInterfaces reads the host's interfaces again.
func (n *Net) UpdateInterfaces() error { return n.h.Do(n.Net.UpdateInterfaces) }

func (n *Net) ListenPacket(network, address string) (net.PacketConn, error) {
	return in(n, func() (net.PacketConn, error) { return n.Net.ListenPacket(network, address) })
}

func (n *Net) ListenUDP(network string, laddr *net.UDPAddr) (ptransport.UDPConn, error) {
	return in(n, func() (ptransport.UDPConn, error) { return n.Net.ListenUDP(network, laddr) })
}

func (n *Net) ListenTCP(network string, laddr *net.TCPAddr) (ptransport.TCPListener, error) {
	return in(n, func() (ptransport.TCPListener, error) { return n.Net.ListenTCP(network, laddr) })
}

func (n *Net) Dial(network, address string) (net.Conn, error) {
	return in(n, func() (net.Conn, error) { return n.Net.Dial(network, address) })
}

func (n *Net) DialUDP(network string, laddr, raddr *net.UDPAddr) (ptransport.UDPConn, error) {
	return in(n, func() (ptransport.UDPConn, error) { return n.Net.DialUDP(network, laddr, raddr) })
}

func (n *Net) DialTCP(network string, laddr, raddr *net.TCPAddr) (ptransport.TCPConn, error) {
	return in(n, func() (ptransport.TCPConn, error) { return n.Net.DialTCP(network, laddr, raddr) })
}

func (n *Net) CreateDialer(d *net.Dialer) ptransport.Dialer { return dialer{n, d} }

func (n *Net) CreateListenConfig(lc *net.ListenConfig) ptransport.ListenConfig {
	return listenConfig{n, lc}
}

type dialer struct {
	n *Net
	d *net.Dialer
}

func (d dialer) Dial(network, address string) (net.Conn, error) {
	return in(d.n, func() (net.Conn, error) { return d.d.Dial(network, address) })
}

type listenConfig struct {
	n  *Net
	lc *net.ListenConfig
}

func (l listenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	return in(l.n, func() (net.Listener, error) { return l.lc.Listen(ctx, network, address) })
}

func (l listenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	return in(l.n, func() (net.PacketConn, error) { return l.lc.ListenPacket(ctx, network, address) })
}
