package config

import (
	"log/slog"

	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport/all"
	"github.com/nearnet/nearnet/internal/transport/quic"
)

// What the node's parts take of the checked Values (defaults filled in).

// Link is what the link protocol takes of v.
func Link(v *Values, logger *slog.Logger) link.Config {
	return link.Config{
		MaxMessageSize: v.MaxMessageSize, SendBuffer: v.SendBuffer, CloseTimeout: v.CloseTimeout,
		KeepAliveIdle: v.KeepAliveIdle, KeepAliveInterval: v.KeepAliveInterval,
		KeepAliveCount: v.KeepAliveCount, Logger: logger,
	}
}

// Transports fills in o, which has the node's TLS, identity, logger,
// loopback and tunnel, what the transports take of v.
func Transports(v *Values, o all.Options) all.Options {
	o.TCP, o.QUIC = v.TransportN != TransportQUIC, v.TransportN != TransportTCP
	o.Proxy, o.ProxyFromEnvironment, o.PreferQUIC = v.Proxy, v.ProxyFromEnvironment, v.PreferQUIC
	o.KeepAliveIdle, o.KeepAliveInterval, o.KeepAliveCount = v.KeepAliveIdle, v.KeepAliveInterval, v.KeepAliveCount
	o.DropTime, o.HandshakeTimeout, o.StreamBuffer = v.DropTime, v.HandshakeTimeout, v.StreamBuffer
	o.DisableDatagrams, o.DatagramIdleTimeout, o.TunnelWithHost = v.DisableDatagrams, v.DatagramIdleTimeout, v.TunnelWithHost
	return o
}

// QUIC is what QUIC paths beyond the LAN take of v.
func QUIC(v *Values) quic.Options {
	return quic.Options{HandshakeTimeout: v.HandshakeTimeout, DropTime: v.DropTime, KeepAliveIdle: v.KeepAliveIdle, DisableDatagrams: v.DisableDatagrams}
}
