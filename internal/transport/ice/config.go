package ice

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	ptransport "github.com/pion/transport/v5"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// Server is a STUN or TURN server: a URL of RFC 7064/7065 form
// ("stun:host:port", "turn:host:port?transport=tcp", "turns:host:port"),
// with the long-term credentials a TURN server needs.
type Server struct {
	URL      string
	Username string
	Password string
}

// String is the URL, without credentials.
func (s Server) String() string { return s.URL }

// ParseServer checks a server URL and its credentials.
func ParseServer(s Server) (*stun.URI, error) {
	u, err := stun.ParseURI(s.URL)
	if err != nil {
		return nil, &nnerr.ConfigError{Field: "ICE server", Value: s.URL, Reason: "not a stun:, turn: or turns: URL: " + err.Error()}
	}
	switch u.Scheme {
	case stun.SchemeTypeTURN, stun.SchemeTypeTURNS:
		if s.Username == "" || s.Password == "" {
			return nil, &nnerr.ConfigError{Field: "ICE server", Value: s.URL, Reason: "a TURN server needs a username and a password"}
		}
		u.Username, u.Password = s.Username, s.Password
	case stun.SchemeTypeSTUN, stun.SchemeTypeSTUNS:
		if s.Username != "" || s.Password != "" {
			return nil, &nnerr.ConfigError{Field: "ICE server", Value: s.URL, Reason: "a STUN server takes no credentials"}
		}
	default:
		return nil, &nnerr.ConfigError{Field: "ICE server", Value: s.URL, Reason: "unknown scheme " + u.Scheme.String()}
	}
	return u, nil
}

// Config configures an [Agent]. The zero value gathers host candidates
// only.
type Config struct {
	// Servers are the STUN and TURN servers: each STUN server (and each
	// TURN server, which answers STUN too) gives a server-reflexive
	// candidate, each TURN server a relayed one.
	Servers []Server

	// CheckTimeout bounds how long a path may go without answers to its
	// checks before the agent gives up on it (ICE's failed state). If
	// zero, 10 seconds.
	CheckTimeout time.Duration

	// NoHost leaves out host candidates: the agent looks for paths beyond
	// the LAN only (through NATs and relays), as a session that has a LAN
	// path already wants a second path that does not share its fate.
	NoHost bool

	// Loopback gathers host candidates on loopback addresses only, and
	// RelayOnly relayed candidates only (every path through a TURN
	// server): benchmarks on one machine (internal/bench) use them.
	Loopback, RelayOnly bool

	// Net opens the agent's sockets; nil: the machine's own network. Tests
	// give one that opens them in a network namespace.
	Net ptransport.Net

	// RootCAs verifies the certificates of turns: servers in [Probe]; nil:
	// the system's roots. (pion's agent always uses the system's roots, which
	// SSL_CERT_FILE can point elsewhere.)
	RootCAs *x509.CertPool

	// Logger gets pion's messages at debug level; nil discards them.
	Logger *slog.Logger
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// DefaultCheckTimeout is Config.CheckTimeout's default.
const DefaultCheckTimeout = 10 * time.Second

func (c *Config) checkTimeout() time.Duration {
	if c.CheckTimeout == 0 {
		return DefaultCheckTimeout
	}
	return c.CheckTimeout
}

func (c *Config) urls() ([]*stun.URI, error) {
	var out []*stun.URI
	for _, s := range c.Servers {
		u, err := ParseServer(s)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if c.CheckTimeout < 0 || (c.CheckTimeout > 0 && c.CheckTimeout < 100*time.Millisecond) {
		return nil, &nnerr.ConfigError{Field: "CheckTimeout", Value: c.CheckTimeout, Reason: "must be 0 (10s) or at least 100ms"}
	}
	return out, nil
}

// slogFactory hands pion's log lines to a slog.Logger at debug level.
type slogFactory struct{ l *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{f.l.With("pion", scope)}
}

type slogLogger struct{ l *slog.Logger }

func (l slogLogger) log(level string, msg string) {
	l.l.Debug("nearnet: ice: "+strings.TrimSpace(msg), "level", level)
}
func (l slogLogger) Trace(m string)            { l.log("trace", m) }
func (l slogLogger) Tracef(f string, a ...any) { l.log("trace", fmt.Sprintf(f, a...)) }
func (l slogLogger) Debug(m string)            { l.log("debug", m) }
func (l slogLogger) Debugf(f string, a ...any) { l.log("debug", fmt.Sprintf(f, a...)) }
func (l slogLogger) Info(m string)             { l.log("info", m) }
func (l slogLogger) Infof(f string, a ...any)  { l.log("info", fmt.Sprintf(f, a...)) }
func (l slogLogger) Warn(m string)             { l.log("warn", m) }
func (l slogLogger) Warnf(f string, a ...any)  { l.log("warn", fmt.Sprintf(f, a...)) }
func (l slogLogger) Error(m string)            { l.log("error", m) }
func (l slogLogger) Errorf(f string, a ...any) { l.log("error", fmt.Sprintf(f, a...)) }
