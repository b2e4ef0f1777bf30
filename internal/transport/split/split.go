// Package split runs one kind of transport on two networks at once: the
// host's sockets and a userspace TCP/IP stack (nearnet's Config.Tunnel
// with TunnelWithHost). It dials an address on the stack's networks
// through the stack and any other through the host, and listens on both
// with the same port number, so a peer may reach the node either way.
package split

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
)

// Transport is a host transport and the same transport on a userspace
// stack, as one. It is safe for concurrent use.
type Transport struct {
	host, tun transport.Transport
	inTunnel  func(netip.Addr) bool
}

// New returns the Transport of host and tun; inTunnel says which addresses
// tun dials.
func New(host, tun transport.Transport, inTunnel func(netip.Addr) bool) *Transport {
	return &Transport{host: host, tun: tun, inTunnel: inTunnel}
}

func (t *Transport) Name() string                 { return t.host.Name() }
func (t *Transport) Service(base string) string   { return t.host.Service(base) }
func (t *Transport) FallbackAfter() time.Duration { return t.host.FallbackAfter() }

// Tunneled reports whether a dial to addr goes through the stack.
func (t *Transport) Tunneled(addr string) bool { return InTunnel(addr, t.inTunnel) }

func (t *Transport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	if t.Tunneled(addr) {
		return t.tun.Dial(ctx, addr)
	}
	return t.host.Dial(ctx, addr)
}

// Listen listens on addr on the host and on every address of the stack
// with the host listener's port.
func (t *Transport) Listen(ctx context.Context, addr string, a transport.Acceptor) (transport.Listener, error) {
	hl, err := t.host.Listen(ctx, addr, a)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(hl.Addr().String())
	tl, err := t.tun.Listen(ctx, net.JoinHostPort("", port), a)
	if err != nil {
		hl.Close()
		return nil, err
	}
	return listener{hl, tl}, nil
}

// listener is the host's listener and the stack's; its address is the
// host's.
type listener struct{ host, tun transport.Listener }

func (l listener) Addr() net.Addr { return l.host.Addr() }
func (l listener) Close() error   { return errors.Join(l.host.Close(), l.tun.Close()) }

func (t *Transport) Close() error { return errors.Join(t.host.Close(), t.tun.Close()) }

var _ transport.Transport = (*Transport)(nil)
