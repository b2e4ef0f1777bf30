// Package config checks a node's configuration: the rules each field of
// the root's Config must keep and the combinations that contradict each
// other. The root copies the fields into Values (by the same names) and
// gets back the first violation as a ConfigError naming the field.
package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/transport/ice"
)

// The root's Transport and SecurityMode values, in its order.
const (
	TransportAuto = iota
	TransportTCP
	TransportQUIC
)

const (
	SecurityAuto = iota
	SecurityNone
	SecurityPSK
	SecurityPinned
	SecurityPKI
)

// Values are the fields of the root's Config that the rules read, by the
// same names, after defaults were filled in (for Contradictions: as the
// caller gave them). Transport and Security are the root's values (for
// messages) with their numbers in TransportN and SecurityN.
type Values struct {
	ICEServers                     []ice.Server
	Name, Service, ListenAddr      string
	TXT, Metadata                  map[string]string
	Hidden, PreferQUIC             bool
	Transport                      any
	TransportN                     int
	Proxy                          string
	ProxyFromEnvironment           bool
	DisableDatagrams               bool
	DatagramIdleTimeout            time.Duration
	Security                       any
	SecurityN                      int
	HasKey, ZeroKey, HasRoots      bool
	Trust                          int
	KnownPeersFile                 string
	TrustOnFirstUse                bool
	MaxMessageSize, SendBuffer     int
	ReceiveBuffer, StreamBuffer    int
	AcceptBacklog, StreamBacklog   int
	MaxDials, KeepAliveCount       int
	HandshakeTimeout, CloseTimeout time.Duration
	KeepAliveIdle                  time.Duration
	KeepAliveInterval              time.Duration
	DropTime, ResumeWindow         time.Duration
	ViabilityDebounce              time.Duration
	MemoryBudget                   int64
	TransportString                string // the Transport's name, for messages

	// Wide-area discovery (the TSIG key only as its printable form, never
	// the secret).
	Domain, DNSServer, TSIGKey string
	HasTSIGKey, HasOnWideArea  bool
	DNSRefresh                 time.Duration
	Tunnel, TunnelWithHost     bool // Tunnel: Config.Tunnel is not nil
}

// ReservedTXT are the TXT keys nearnet sets itself.
var ReservedTXT = []string{"id", "v", "tr"}

func bad(field string, v any, reason string) error {
	return &nnerr.ConfigError{Field: "Config." + field, Value: v, Reason: reason}
}

// Contradictions returns a ConfigError for the first field set (as the
// caller gave it, before defaults) that another field makes pointless: a
// value the node would ignore is a mistake to report, not to accept.
func Contradictions(c *Values) error {
	switch {
	case c.Hidden && len(c.TXT) > 0:
		return bad("TXT", c.TXT, "set with Hidden, which advertises nothing to carry it")
	case c.Domain == "" && c.DNSServer != "":
		return bad("DNSServer", c.DNSServer, "set without Domain: there is no wide-area domain to ask it about")
	case c.Domain == "" && c.HasTSIGKey:
		return bad("TSIGKey", c.TSIGKey, "set without Domain: there is no wide-area domain to register in")
	case c.Domain == "" && c.DNSRefresh != 0:
		return bad("DNSRefresh", c.DNSRefresh, "set without Domain: there is no wide-area registration or browse to refresh")
	case c.Domain != "" && c.DNSServer == "":
		return bad("Domain", c.Domain, "needs DNSServer, the address of the domain's authoritative DNS server")
	case c.HasOnWideArea && (c.Domain == "" || !c.HasTSIGKey || c.Hidden):
		return bad("OnWideArea", "set", "set without a wide-area registration to report on (Domain and TSIGKey, not Hidden)")
	case c.Hidden && c.HasTSIGKey:
		return bad("TSIGKey", c.TSIGKey, "set with Hidden, which registers nothing")
	case c.DisableDatagrams && c.DatagramIdleTimeout != 0:
		return bad("DatagramIdleTimeout", c.DatagramIdleTimeout, "set with DisableDatagrams, which opens no datagram flow to time out")
	case c.PreferQUIC && c.TransportN == TransportAuto && (c.Proxy != "" || c.ProxyFromEnvironment):
		return bad("PreferQUIC", true, "set with Proxy or ProxyFromEnvironment: QUIC cannot follow a proxy, so only TCP is dialed")
	case c.TunnelWithHost && !c.Tunnel:
		return bad("TunnelWithHost", true, "set without Tunnel")
	case c.Tunnel && !c.TunnelWithHost && c.Domain != "":
		return bad("Domain", c.Domain, "set with Tunnel alone, which has no discovery (set TunnelWithHost for the host's)")
	case c.Tunnel && !c.TunnelWithHost && (c.Proxy != "" || c.ProxyFromEnvironment):
		return bad("Proxy", c.Proxy, "set with Tunnel alone: connections inside the tunnel do not go through a proxy (set TunnelWithHost for the host's)")
	}
	return nil
}

// Check returns the first field of c (defaults filled in) that breaks its
// rules, or the security mode SecurityAuto resolves to.
func Check(c *Values) (security int, err error) {
	if len(c.Name) > 63 || !utf8.ValidString(c.Name) {
		return 0, bad("Name", c.Name, "must be UTF-8 of at most 63 bytes")
	}
	if err := discovery.ValidateServiceType(c.Service); err != nil {
		return 0, bad("Service", c.Service, err.Error())
	}
	if len(c.Service) <= 5 || c.Service[len(c.Service)-5:] != "._tcp" {
		return 0, bad("Service", c.Service, `must end in "._tcp": it names the WebSocket-over-TCP listener`)
	}
	for k := range c.TXT {
		for _, r := range ReservedTXT {
			if k == r {
				return 0, bad("TXT", k, `keys "id", "v" and "tr" are set by nearnet`)
			}
		}
	}
	if _, err := discovery.EncodeTXT(c.TXT); err != nil {
		return 0, bad("TXT", c.TXT, err.Error())
	}
	if len(c.Metadata) > 64 {
		return 0, bad("Metadata", len(c.Metadata), "at most 64 keys")
	}
	metaLen := 0
	for k, v := range c.Metadata {
		if k == "" {
			return 0, bad("Metadata", c.Metadata, "empty key")
		}
		metaLen += len(k) + len(v)
	}
	if metaLen > 4096 {
		return 0, bad("Metadata", metaLen, "at most 4096 bytes of keys and values")
	}
	if c.ListenAddr != "" {
		if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil {
			return 0, bad("ListenAddr", c.ListenAddr, `must be "host:port" (host may be empty)`)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return 0, bad("ListenAddr", c.ListenAddr, "port must be 0-65535")
		}
	}
	switch c.TransportN {
	case TransportAuto:
	case TransportTCP, TransportQUIC:
		if c.PreferQUIC {
			return 0, bad("PreferQUIC", true, "only applies to TransportAuto, which dials both transports; Transport is "+c.TransportString)
		}
	default:
		return 0, bad("Transport", c.TransportN, "unknown transport; use TransportAuto, TransportTCP or TransportQUIC")
	}
	if c.TransportN == TransportQUIC && (c.Proxy != "" || c.ProxyFromEnvironment) {
		return 0, bad("Transport", c.Transport, "QUIC cannot go through an HTTP CONNECT or SOCKS5 proxy: use TransportTCP or TransportAuto with Proxy")
	}
	security, err = checkSecurity(c)
	if err != nil {
		return 0, err
	}
	for _, r := range []struct {
		field  string
		v      any
		ok     bool
		reason string
	}{
		{"MaxMessageSize", c.MaxMessageSize, c.MaxMessageSize >= 1 && c.MaxMessageSize <= 1<<30, "must be 1 byte to 1 GiB"},
		{"SendBuffer", c.SendBuffer, c.SendBuffer >= 1024, "must be at least 1024 bytes"},
		{"ReceiveBuffer", c.ReceiveBuffer, c.ReceiveBuffer >= 1024, "must be at least 1024 bytes"},
		{"HandshakeTimeout", c.HandshakeTimeout, c.HandshakeTimeout >= 0, "must not be negative"},
		{"CloseTimeout", c.CloseTimeout, c.CloseTimeout >= 0, "must not be negative"},
		{"DatagramIdleTimeout", c.DatagramIdleTimeout, c.DatagramIdleTimeout >= 10*time.Millisecond && c.DatagramIdleTimeout <= 24*time.Hour, "must be 0 (24 hours) or 10ms to 24h"},
		{"AcceptBacklog", c.AcceptBacklog, c.AcceptBacklog >= 0, "must not be negative"},
		{"StreamBuffer", c.StreamBuffer, c.StreamBuffer >= 4<<10 && c.StreamBuffer <= 64<<20, "must be 0 (256 KiB) or 4 KiB to 64 MiB"},
		{"KeepAliveIdle", c.KeepAliveIdle, c.KeepAliveIdle >= 10*time.Millisecond && c.KeepAliveIdle <= time.Hour, "must be 0 (1s) or 10ms to 1h"},
		{"KeepAliveInterval", c.KeepAliveInterval, c.KeepAliveInterval >= 10*time.Millisecond && c.KeepAliveInterval <= time.Hour, "must be 0 (500ms) or 10ms to 1h"},
		{"KeepAliveCount", c.KeepAliveCount, c.KeepAliveCount >= 1 && c.KeepAliveCount <= 100, "must be 0 (4) or 1 to 100"},
		{"DropTime", c.DropTime, c.DropTime > c.KeepAliveIdle && c.DropTime <= 24*time.Hour, "must be 0 (10s) or longer than KeepAliveIdle, at most 24h"},
		{"ResumeWindow", c.ResumeWindow, c.ResumeWindow <= 24*time.Hour, "must be at most 24h (negative: off)"},
		{"ViabilityDebounce", c.ViabilityDebounce, c.ViabilityDebounce >= 0 && c.ViabilityDebounce <= time.Minute, "must be 0 (250ms) to 1m"},
		{"MemoryBudget", c.MemoryBudget, c.MemoryBudget < 0 || c.MemoryBudget >= 16*int64(c.MaxMessageSize), fmt.Sprintf("must be 0 (the default), negative (no node-wide bound) or at least 16 × MaxMessageSize (%d)", 16*int64(c.MaxMessageSize))},
		{"MaxDials", c.MaxDials, c.MaxDials >= 1 && c.MaxDials <= 4096, "must be 0 (16) or 1 to 4096"},
		{"StreamBacklog", c.StreamBacklog, c.StreamBacklog >= 1 && c.StreamBacklog <= 4096, "must be 0 (16) or 1 to 4096"},
	} {
		if !r.ok {
			return 0, bad(r.field, r.v, r.reason)
		}
	}
	for _, s := range c.ICEServers {
		if _, err := ice.ParseServer(s); err != nil {
			reason := err.Error()
			if ce, ok := err.(*nnerr.ConfigError); ok {
				reason = ce.Reason
			}
			return 0, bad("ICEServers", s.URL, reason)
		}
	}
	return security, nil
}

func checkSecurity(c *Values) (int, error) {
	if c.ZeroKey {
		// Not the key itself in Value, even this one: a Key's String is
		// the secret.
		return 0, bad("Key", "all zeros", "an all-zero key protects nothing (it is what a missing key file read with the error ignored gives): did loading the key file fail? Make one with security.GenerateKey or nearnet keygen")
	}
	hasPins := c.Trust > 0 || c.KnownPeersFile != ""
	if c.TrustOnFirstUse && c.KnownPeersFile == "" {
		return 0, bad("TrustOnFirstUse", true, "needs KnownPeersFile to record what it trusts")
	}
	switch c.SecurityN {
	case SecurityAuto:
		n := 0
		for _, b := range []bool{c.HasKey, hasPins, c.HasRoots} {
			if b {
				n++
			}
		}
		switch {
		case n == 0:
			return 0, bad("Security", c.Security, "no security configured: set Key, Trust, KnownPeersFile or Roots, or set Security to SecurityNone to run without it")
		case n > 1:
			return 0, bad("Security", c.Security, "more than one of Key, Trust/KnownPeersFile and Roots is set: name the mode in Security")
		case c.HasKey:
			return SecurityPSK, nil
		case hasPins:
			return SecurityPinned, nil
		}
		return SecurityPKI, nil
	case SecurityNone:
		if c.HasKey || hasPins || c.HasRoots {
			return 0, bad("Security", c.Security, "SecurityNone with Key, Trust, KnownPeersFile or Roots set: they would be ignored")
		}
	case SecurityPSK:
		if !c.HasKey {
			return 0, bad("Key", nil, "SecurityPSK needs a Key")
		}
	case SecurityPinned:
		// With neither Trust nor KnownPeersFile the node trusts only
		// the peers it pairs with (Node.OfferPairing, Node.AnswerPairing).
	case SecurityPKI:
		if !c.HasRoots {
			return 0, bad("Roots", nil, "SecurityPKI needs Roots")
		}
	default:
		return 0, bad("Security", c.SecurityN, "unknown security mode; use SecurityAuto, SecurityNone, SecurityPSK, SecurityPinned or SecurityPKI")
	}
	return c.SecurityN, nil
}
