package quict

import (
	"strconv"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// Defaults, for the [Config] fields whose zero value means "use the default".
const (
	DefaultHandshakeTimeout               = 10 * time.Second
	DefaultMaxIdleTimeout                 = 30 * time.Second
	DefaultKeepAlivePeriod                = 10 * time.Second
	DefaultInitialStreamReceiveWindow     = 512 << 10
	DefaultMaxStreamReceiveWindow         = 6 << 20
	DefaultInitialConnectionReceiveWindow = 512 << 10
	DefaultMaxConnectionReceiveWindow     = 15 << 20
	DefaultMaxIncomingStreams             = 100
)

// Limits of the window fields of [Config].
const (
	minWindow = 16 << 10
	maxWindow = 1 << 30
)

// Config configures the QUIC connections of a [Transport]'s Listen and Dial.
// The zero value (and a nil *Config) means every default. Listen and Dial
// copy the Config; changing it afterwards has no effect. An invalid value is
// rejected with a [*ConfigError] that names the field and the allowed range.
type Config struct {
	// HandshakeTimeout bounds the QUIC and TLS handshake, and on the
	// listener also the wait for the dialer's control stream. If zero,
	// DefaultHandshakeTimeout (10 s); else 10 ms to 10 min.
	HandshakeTimeout time.Duration

	// MaxIdleTimeout closes a connection on which nothing was received for
	// this long (the smaller of the two sides' values applies). If zero,
	// DefaultMaxIdleTimeout (30 s); else 100 ms to 24 h.
	MaxIdleTimeout time.Duration

	// KeepAlivePeriod is how often a PING is sent on an otherwise quiet
	// connection so that the peer's idle timeout does not fire. If zero,
	// DefaultKeepAlivePeriod (10 s) or half of MaxIdleTimeout, whichever is
	// smaller; negative disables keepalives. A positive value must be less
	// than MaxIdleTimeout.
	KeepAlivePeriod time.Duration

	// InitialStreamReceiveWindow and MaxStreamReceiveWindow bound the bytes
	// one stream may have in flight to this side that the application has
	// not read: the window starts at the initial value and grows (while the
	// application keeps up) to the maximum. They are what a slow reader
	// costs in memory per stream. If zero, 512 KiB and 6 MiB; else 16 KiB
	// to 1 GiB, the initial value at most the maximum.
	InitialStreamReceiveWindow uint64
	MaxStreamReceiveWindow     uint64

	// InitialConnectionReceiveWindow and MaxConnectionReceiveWindow do the
	// same for all streams of a connection together. If zero, 512 KiB and
	// 15 MiB; else 16 KiB to 1 GiB, the initial value at most the maximum.
	InitialConnectionReceiveWindow uint64
	MaxConnectionReceiveWindow     uint64

	// MaxIncomingStreams is how many bidirectional streams the peer may
	// have open to this side at once, its control stream included. If
	// zero, DefaultMaxIncomingStreams (100); else 1 to 65535.
	MaxIncomingStreams int
}

// ConfigError reports an invalid [Config] field or argument.
type ConfigError = nnerr.ConfigError

func bad(field string, v any, reason string) error {
	return &ConfigError{Field: "Config." + field, Value: v, Reason: reason}
}

// withDefaults returns a copy of c (nil means the zero Config) with every
// default filled in, or the first invalid field's error.
func (c *Config) withDefaults() (Config, error) {
	var n Config
	if c != nil {
		n = *c
	}
	setDefault(&n.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&n.MaxIdleTimeout, DefaultMaxIdleTimeout)
	setDefault(&n.InitialStreamReceiveWindow, DefaultInitialStreamReceiveWindow)
	setDefault(&n.MaxStreamReceiveWindow, DefaultMaxStreamReceiveWindow)
	setDefault(&n.InitialConnectionReceiveWindow, DefaultInitialConnectionReceiveWindow)
	setDefault(&n.MaxConnectionReceiveWindow, DefaultMaxConnectionReceiveWindow)
	setDefault(&n.MaxIncomingStreams, DefaultMaxIncomingStreams)

	if n.HandshakeTimeout < 10*time.Millisecond || n.HandshakeTimeout > 10*time.Minute {
		return n, bad("HandshakeTimeout", n.HandshakeTimeout, "must be 0 (10s) or 10ms to 10m")
	}
	if n.MaxIdleTimeout < 100*time.Millisecond || n.MaxIdleTimeout > 24*time.Hour {
		return n, bad("MaxIdleTimeout", n.MaxIdleTimeout, "must be 0 (30s) or 100ms to 24h")
	}
	switch {
	case n.KeepAlivePeriod == 0:
		n.KeepAlivePeriod = min(DefaultKeepAlivePeriod, n.MaxIdleTimeout/2)
	case n.KeepAlivePeriod > 0 && n.KeepAlivePeriod >= n.MaxIdleTimeout:
		return n, bad("KeepAlivePeriod", n.KeepAlivePeriod, "must be less than MaxIdleTimeout ("+n.MaxIdleTimeout.String()+"), 0 (default) or negative (no keepalives)")
	}
	for _, w := range []struct {
		initialName, maxName string
		initial, max         uint64
		initialDef, maxDef   string
	}{
		{"InitialStreamReceiveWindow", "MaxStreamReceiveWindow", n.InitialStreamReceiveWindow, n.MaxStreamReceiveWindow, "512 KiB", "6 MiB"},
		{"InitialConnectionReceiveWindow", "MaxConnectionReceiveWindow", n.InitialConnectionReceiveWindow, n.MaxConnectionReceiveWindow, "512 KiB", "15 MiB"},
	} {
		if w.initial < minWindow || w.initial > maxWindow {
			return n, bad(w.initialName, w.initial, "must be 0 ("+w.initialDef+") or 16 KiB to 1 GiB")
		}
		if w.max < minWindow || w.max > maxWindow {
			return n, bad(w.maxName, w.max, "must be 0 ("+w.maxDef+") or 16 KiB to 1 GiB")
		}
		if w.initial > w.max {
			return n, bad(w.initialName, w.initial, "must not exceed "+w.maxName+" ("+strconv.FormatUint(w.max, 10)+")")
		}
	}
	if n.MaxIncomingStreams < 1 || n.MaxIncomingStreams > 65535 {
		return n, bad("MaxIncomingStreams", n.MaxIncomingStreams, "must be 0 (100) or 1 to 65535")
	}
	return n, nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// quicConfig is the quic-go configuration for c, which has its defaults.
func (c *Config) quicConfig() *quic.Config {
	return &quic.Config{
		// quic-go aborts a handshake that takes twice this long.
		HandshakeIdleTimeout:           c.HandshakeTimeout / 2,
		MaxIdleTimeout:                 c.MaxIdleTimeout,
		KeepAlivePeriod:                max(c.KeepAlivePeriod, 0),
		InitialStreamReceiveWindow:     c.InitialStreamReceiveWindow,
		MaxStreamReceiveWindow:         c.MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow: c.InitialConnectionReceiveWindow,
		MaxConnectionReceiveWindow:     c.MaxConnectionReceiveWindow,
		MaxIncomingStreams:             int64(c.MaxIncomingStreams),
		MaxIncomingUniStreams:          -1, // nearnet uses none
		EnableDatagrams:                true,
	}
}
