// Package all sets up a node's transports (TCP and QUIC) from its
// configuration: which of them listen, and in which order Connect dials
// them.
package all

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/quic"
	"github.com/nearnet/nearnet/internal/transport/split"
	"github.com/nearnet/nearnet/internal/transport/tcp"
	"github.com/nearnet/nearnet/proxy"
	"github.com/nearnet/nearnet/security"
)

// MaxReadAhead is the largest read-ahead buffer of a stream connection; a
// smaller stream buffer makes it smaller.
const MaxReadAhead = 256 << 10

// Options are what the transports take of the node's configuration.
type Options struct {
	TCP, QUIC            bool        // which transports the node runs
	Server, Client       *tls.Config // nil with SecurityNone
	Identity             *security.Identity
	Proxy                string
	ProxyFromEnvironment bool
	PreferQUIC           bool
	KeepAliveIdle        time.Duration
	KeepAliveInterval    time.Duration
	KeepAliveCount       int
	DropTime             time.Duration
	HandshakeTimeout     time.Duration
	StreamBuffer         int
	DisableDatagrams     bool
	DatagramIdleTimeout  time.Duration
	Loopback             bool // every interface the node uses is a loopback interface
	Logger               *slog.Logger

	// Tunnel, if not nil, is the userspace stack the transports take their
	// sockets from; with TunnelWithHost, each runs on host and stack at
	// once (split), an address on the stack's networks dialed through it.
	Tunnel         Tunnel
	TunnelWithHost bool
}

// Tunnel is a userspace TCP/IP stack: a transport.Network that tells the
// addresses on its networks.
type Tunnel interface {
	transport.Network
	Contains(ip netip.Addr) bool
}

// onTunnel returns host itself without a Tunnel, the same transport on
// the stack alone (on) without TunnelWithHost, else both (split).
func (o Options) onTunnel(host transport.Transport, on func(transport.Network) transport.Transport) transport.Transport {
	if o.Tunnel == nil {
		return host
	}
	t := on(o.Tunnel)
	if !o.TunnelWithHost {
		return t
	}
	return split.New(host, t, o.Tunnel.Contains)
}

// Make sets up the transports, in the order they listen (the first one's
// address is the node's), and the order Connect tries them: TCP first
// unless PreferQUIC, and TCP alone through a proxy (QUIC cannot follow
// one). A bad Proxy is a ConfigError.
func Make(o Options) (listen, dial []transport.Transport, err error) {
	var tcpT, quicT transport.Transport
	if o.TCP {
		to := tcp.Options{
			Server: o.Server, Client: o.Client,
			ProxyFromEnvironment: o.ProxyFromEnvironment,
			KeepAlive:            net.KeepAliveConfig{Enable: true, Idle: o.KeepAliveIdle, Interval: o.KeepAliveInterval, Count: o.KeepAliveCount},
			DropTime:             o.DropTime,
			HandshakeTimeout:     o.HandshakeTimeout,
			StreamReadAhead:      min(o.StreamBuffer, MaxReadAhead),
			DisableDatagrams:     o.DisableDatagrams,
			DatagramIdleTimeout:  o.DatagramIdleTimeout,
			Loopback:             o.Loopback,
			Logger:               o.Logger,
		}
		if o.Proxy != "" {
			if to.Proxy, err = proxy.ParseWith(o.Proxy, tcp.New(to).Dialer()); err != nil {
				var ue *proxy.URLError
				value := "(redacted)"
				if errors.As(err, &ue) {
					value = ue.URL
				}
				return nil, nil, &nnerr.ConfigError{Field: "Config.Proxy", Value: value, Reason: err.Error()}
			}
		}
		tcpT = o.onTunnel(tcp.New(to), func(nw transport.Network) transport.Transport {
			to.Net, to.Proxy, to.ProxyFromEnvironment = nw, nil, false
			return tcp.New(to)
		})
		listen = append(listen, tcpT)
	}
	if o.QUIC {
		qserver, qclient := o.Server, o.Client
		if o.Server == nil {
			// No TLS over TCP in SecurityNone, but QUIC cannot run
			// without it: the node's identity, authenticating nobody.
			qserver, qclient = security.ServerConfig(o.Identity, nil), security.ClientConfig(o.Identity, nil)
		}
		qo := quic.Options{
			Server: qserver, Client: qclient, Authenticated: o.Server != nil,
			HandshakeTimeout: o.HandshakeTimeout, DropTime: o.DropTime, KeepAliveIdle: o.KeepAliveIdle,
			DisableDatagrams: o.DisableDatagrams, Loopback: o.Loopback, Logger: o.Logger,
		}
		quicT = o.onTunnel(quic.New(qo), func(nw transport.Network) transport.Transport {
			qo.Net = nw
			return quic.New(qo)
		})
		listen = append(listen, quicT)
	}
	switch {
	case tcpT == nil || quicT == nil:
		dial = listen
	case o.Proxy != "" || o.ProxyFromEnvironment:
		dial = []transport.Transport{tcpT}
	case o.PreferQUIC:
		dial = []transport.Transport{quicT, tcpT}
	default:
		dial = []transport.Transport{tcpT, quicT}
	}
	return listen, dial, nil
}

// Loopback reports whether ifaces (Config.Interfaces) names loopback
// interfaces only: a socket for dialing then binds to loopback.
func Loopback(ifaces []string) bool {
	if len(ifaces) == 0 {
		return false
	}
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil || ifi.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}
