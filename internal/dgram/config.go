package dgram

import (
	"log/slog"
	"time"
)

// Config configures a [Mux]. The zero value is valid; a nil *Config means
// the zero value. Listen copies it and never changes the caller's struct.
type Config struct {
	// IdleTimeout closes a flow (with [ErrExpired]) after this long without a
	// datagram sent or received on it. Expiry is checked by one sweep per
	// quarter of the timeout, so a flow goes between IdleTimeout and 1.25 x
	// IdleTimeout after its last datagram. If zero, 30 seconds. At least 10ms,
	// at most 24 hours.
	IdleTimeout time.Duration

	// QueueLen is how many received datagrams a flow holds for
	// [Flow.Receive]; more are dropped (counted in [Drops.QueueFull]). If
	// zero, 256. At most 65536.
	QueueLen int

	// QueueBytes caps the payload bytes held by all flows of the Mux
	// together, so memory stays bounded however many flows have slow
	// receivers. A datagram that would pass it is dropped (counted in
	// [Drops.QueueFull]). If zero, 32 MiB. At least 64 KiB, at most 1 GiB.
	QueueBytes int

	// SocketBuffer is the receive and send buffer size asked of the OS for
	// the socket (SO_RCVBUF, SO_SNDBUF). The OS may grant less (Linux caps it
	// at net.core.rmem_max unless the process may raise it). If zero, 4 MiB.
	// At least 64 KiB, at most 256 MiB.
	SocketBuffer int

	// Logger receives debug and warning logs; never one per datagram. If
	// nil, logs are discarded.
	Logger *slog.Logger
}

const (
	defaultIdleTimeout  = 30 * time.Second
	defaultQueueLen     = 256
	defaultQueueBytes   = 32 << 20
	defaultSocketBuffer = 4 << 20
)

// withDefaults validates c and returns a copy with defaults filled in.
func (c *Config) withDefaults() (Config, error) {
	var n Config
	if c != nil {
		n = *c
	}
	switch {
	case n.IdleTimeout == 0:
		n.IdleTimeout = defaultIdleTimeout
	case n.IdleTimeout < 10*time.Millisecond || n.IdleTimeout > 24*time.Hour:
		return n, &ConfigError{Field: "Config.IdleTimeout", Value: n.IdleTimeout, Reason: "want 0 (30s) or 10ms to 24h"}
	}
	switch {
	case n.QueueLen == 0:
		n.QueueLen = defaultQueueLen
	case n.QueueLen < 1 || n.QueueLen > 65536:
		return n, &ConfigError{Field: "Config.QueueLen", Value: n.QueueLen, Reason: "want 0 (256) or 1 to 65536"}
	}
	switch {
	case n.QueueBytes == 0:
		n.QueueBytes = defaultQueueBytes
	case n.QueueBytes < 64<<10 || n.QueueBytes > 1<<30:
		return n, &ConfigError{Field: "Config.QueueBytes", Value: n.QueueBytes, Reason: "want 0 (32 MiB) or 64 KiB to 1 GiB"}
	}
	switch {
	case n.SocketBuffer == 0:
		n.SocketBuffer = defaultSocketBuffer
	case n.SocketBuffer < 64<<10 || n.SocketBuffer > 256<<20:
		return n, &ConfigError{Field: "Config.SocketBuffer", Value: n.SocketBuffer, Reason: "want 0 (4 MiB) or 64 KiB to 256 MiB"}
	}
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	return n, nil
}
