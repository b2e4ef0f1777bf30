package nearnet

import (
	"context"
	"crypto/x509"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/security"
)

// SecurityMode says how a node authenticates its peers. Every mode but
// SecurityNone runs TLS 1.3 with both sides presenting a certificate.
type SecurityMode int

const (
	// SecurityAuto, the zero value, picks the mode from the fields that are
	// set: Key gives SecurityPSK, Trust or KnownPeersFile gives
	// SecurityPinned, Roots gives SecurityPKI. Setting none of them is an
	// error: a node never runs without security unless asked by name.
	SecurityAuto SecurityMode = iota
	// SecurityNone turns TLS off: plain WebSocket over TCP, no
	// authentication, no encryption. Only for tests and trusted links.
	SecurityNone
	// SecurityPSK: both sides prove they hold Key with an HMAC over the TLS
	// exporter, binding the key to this TLS session.
	SecurityPSK
	// SecurityPinned: the peer's identity fingerprint must be in Trust or
	// the KnownPeersFile (or is added there on first use if TrustOnFirstUse).
	SecurityPinned
	// SecurityPKI: the peer's certificate must chain to Roots.
	SecurityPKI
)

var modeNames = [...]string{"auto", "none", "psk", "pinned", "pki"}

func (m SecurityMode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "SecurityMode(" + strconv.Itoa(int(m)) + ")"
}

// Transport selects the transports a node offers and dials: WebSocket over
// TLS over TCP, QUIC (PROTOCOL.md, "QUIC"), or both.
type Transport int

const (
	// TransportAuto, the zero value, offers both: Listen opens a TCP and
	// a QUIC listener on the same port number and advertises both service
	// types; Connect dials TCP first and falls back to QUIC (QUIC first
	// with Config.PreferQUIC). With a proxy, only TCP is dialed.
	TransportAuto Transport = iota
	// TransportTCP: WebSocket over TLS over TCP only.
	TransportTCP
	// TransportQUIC: QUIC only (github.com/quic-go/quic-go): messages on a
	// control stream, native streams, DATAGRAM frames.
	TransportQUIC
)

var transportNames = [...]string{"auto", "tcp", "quic"}

func (t Transport) String() string {
	if t >= 0 && int(t) < len(transportNames) {
		return transportNames[t]
	}
	return "Transport(" + strconv.Itoa(int(t)) + ")"
}

// ParseTransport parses "auto", "tcp" or "quic".
func ParseTransport(s string) (Transport, error) {
	for i, name := range transportNames {
		if s == name {
			return Transport(i), nil
		}
	}
	return 0, &ConfigError{Field: "Config.Transport", Value: s, Reason: `must be "auto", "tcp" or "quic"`}
}

// Defaults, for the Config fields whose zero value means "use the default".
const (
	DefaultService          = "_nearnet._tcp"
	DefaultMaxMessageSize   = 4 << 20
	DefaultSendBuffer       = 1 << 20
	DefaultReceiveBuffer    = 1 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultCloseTimeout     = 5 * time.Second
	DefaultAcceptBacklog    = 64
	DefaultStreamBuffer     = 256 << 10

	// Keepalive and resume defaults, for a LAN rather than the Internet's
	// two hours: a silent peer makes the connection inviable after about
	// 3 s and drops its transport after 10 s; a session whose transport
	// broke waits 30 s for a new one.
	DefaultKeepAliveIdle     = time.Second
	DefaultKeepAliveInterval = 500 * time.Millisecond
	DefaultKeepAliveCount    = 4
	DefaultDropTime          = 10 * time.Second
	DefaultResumeWindow      = 30 * time.Second
	DefaultViabilityDebounce = 250 * time.Millisecond
	DefaultStreamBacklog     = 16
	DefaultMaxDials          = 16
)

// Config configures a Node. The zero value is useful once a security mode is
// chosen (set Key, Trust, KnownPeersFile or Roots, or Security:
// SecurityNone). A nil *Config is not allowed because of that choice.
// NewNode copies the Config; changing it afterwards has no effect. Every
// invalid value, and every combination of fields that contradict each
// other (one would be ignored), is rejected by NewNode with a
// [*ConfigError] naming the field.
//
// The fields come in groups: identity and discovery, transports,
// security, limits, liveness, callbacks, logging. Each says what its zero
// value means.
type Config struct {
	// Identity and discovery.

	// Name is the instance name advertised over DNS-SD and sent in the
	// hello: UTF-8, at most 63 bytes. If empty, "nearnet-" followed by the
	// first 8 hex digits of the PeerID, which tells nothing about the device.
	Name string

	// PeerID identifies this node. If zero, a random one is made for each
	// Node (see LoadOrCreatePeerID to keep one across runs).
	PeerID PeerID

	// Identity is this node's key and certificate. If nil, a new one is
	// made for each Node (see security.LoadOrCreateIdentity to keep one,
	// which pinned peers need).
	Identity *security.Identity

	// Metadata is sent to every peer in the hello and reaches the listener's
	// Admit hook and [Conn.Peer]. At most 64 keys, 4 KiB in all. If nil,
	// none.
	Metadata map[string]string

	// Service is the DNS-SD service type, "_name._tcp" per RFC 6335, that
	// the node advertises and browses. If empty, DefaultService
	// ("_nearnet._tcp").
	Service string

	// TXT holds extra DNS-SD TXT entries to advertise. Keys "id", "v" and
	// "tr" are nearnet's own and may not be set here. Each entry
	// (key=value) is at most 255 bytes. If nil, only nearnet's own. It
	// must be empty with Hidden, which advertises nothing.
	TXT map[string]string

	// Interfaces names the network interfaces to discover and advertise on.
	// If empty, every interface that is up and multicast-capable, except
	// loopback. Name "lo" (or the platform's loopback) to use loopback.
	Interfaces []string

	// ListenAddr is the address Listen binds, "host:port": the TCP
	// listener's and, with QUIC, the UDP socket's (the same port). An empty
	// host means all addresses, or 127.0.0.1 when every interface in
	// Interfaces is a loopback interface. If empty, ":0" (a port chosen by
	// the system).
	ListenAddr string

	// Hidden makes Listen accept connections without advertising them. If
	// false, Listen advertises the node over DNS-SD.
	Hidden bool

	// Transports.

	// Transport selects the transports: TransportAuto (the zero value:
	// both), TransportTCP or TransportQUIC. A node that offers QUIC
	// advertises the service type with "_udp" in place of "_tcp" too.
	Transport Transport

	// PreferQUIC makes TransportAuto dial QUIC first and fall back to
	// TCP; if false, TCP is tried first. Only valid with TransportAuto,
	// and not with Proxy or ProxyFromEnvironment, which dial TCP alone.
	PreferQUIC bool

	// Proxy, if set, is the HTTP CONNECT or SOCKS5 proxy outgoing
	// connections go through: "http://user:pass@host:port", "https://...",
	// "socks5://..." (the target resolved here) or "socks5h://..." (by the
	// proxy). Discovery does not cross a proxy, so dial such peers by
	// host:port. A connection through a proxy has no datagrams: UDP cannot
	// follow the tunnel. Errors never show the password. If empty,
	// connections go direct (unless ProxyFromEnvironment).
	Proxy string

	// ProxyFromEnvironment, when Proxy is empty, takes the proxy for each
	// dial from HTTPS_PROXY (or https_proxy), then ALL_PROXY (all_proxy),
	// honouring NO_PROXY (no_proxy). Loopback targets are never proxied.
	// If false, the environment is not consulted.
	ProxyFromEnvironment bool

	// DisableDatagrams turns best-effort datagrams off: no UDP socket is
	// opened and hellos offer no datagram flow. If false, datagrams are on.
	DisableDatagrams bool

	// DatagramIdleTimeout closes a connection's datagram flow after this
	// long without a datagram either way; SendDatagram and ReceiveDatagram
	// then report ErrDatagramsUnavailable. Flows also close with their
	// connection. If zero, 24 hours. At least 10 ms, at most 24 hours;
	// it must be zero with DisableDatagrams.
	DatagramIdleTimeout time.Duration

	// Security.

	// Security selects the security mode; see SecurityAuto (the zero
	// value), which picks it from the fields below.
	Security SecurityMode

	// Key is the pre-shared key for SecurityPSK. If nil, none. A key of
	// all zeros is refused: it is what reading a missing key file while
	// ignoring the error gives, and it protects nothing.
	Key *security.Key

	// Trust lists peer identity fingerprints trusted in SecurityPinned.
	// If empty, none.
	Trust []security.Fingerprint

	// KnownPeersFile is a file of trusted fingerprints (security.KnownPeers)
	// for SecurityPinned. If empty, none.
	KnownPeersFile string

	// TrustOnFirstUse trusts an unknown peer and adds it to
	// KnownPeersFile, which it needs. If false, an unknown peer is refused.
	TrustOnFirstUse bool

	// Roots are the certificate authorities of SecurityPKI. If nil, none.
	Roots *x509.CertPool

	// Limits.

	// MaxMessageSize bounds one message, both ways. If zero,
	// DefaultMaxMessageSize (4 MiB). At most 1 GiB.
	MaxMessageSize int

	// SendBuffer bounds the bytes queued by SendMessage and not yet written
	// to the network, per connection; when full, SendMessage blocks. A
	// message larger than SendBuffer is still accepted when the buffer is
	// empty. If zero, DefaultSendBuffer (1 MiB); at least 1 KiB.
	SendBuffer int

	// ReceiveBuffer bounds the bytes received and not yet taken by
	// ReceiveMessage, per connection; when full, the connection stops
	// reading and the sender slows down. If zero, DefaultReceiveBuffer
	// (1 MiB); at least 1 KiB.
	ReceiveBuffer int

	// StreamBuffer bounds the bytes a [Stream] holds that its Write accepted
	// and the network has not yet taken. A Write blocks (up to the write
	// deadline) while it is full, so a peer that stops reading slows the
	// writer down and memory stays bounded whatever is sent. The kernel's
	// socket buffers come on top, and over TCP with TLS a read-ahead
	// buffer of the same size (at most 256 KiB) and 64 KiB to collect TLS
	// records into larger writes. If zero, DefaultStreamBuffer (256 KiB);
	// 4 KiB to 64 MiB.
	StreamBuffer int

	// AcceptBacklog bounds connections established but not yet taken by
	// Accept. If zero, DefaultAcceptBacklog (64).
	AcceptBacklog int

	// StreamBacklog bounds, per connection, streams and resource offers the
	// peer opened and the application has not yet taken with AcceptStream
	// or AcceptResource; more are refused with an error the opener sees.
	// If zero, DefaultStreamBacklog (16).
	StreamBacklog int

	// MaxDials bounds the dials (transport and link handshakes) the node
	// runs at once, for Connect, ConnectAdvert and resume alike; more wait
	// their turn, within their ctx. A crowded or hostile network (many
	// adverts pointing at a tarpit) then costs a bounded number of
	// descriptors. If zero, DefaultMaxDials (16); at most 4096.
	MaxDials int

	// HandshakeTimeout bounds TCP connect, TLS, upgrade and hello. If zero,
	// DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration

	// CloseTimeout bounds how long Close waits for queued messages to leave
	// and the peer to acknowledge the close. If zero, DefaultCloseTimeout
	// (5 s).
	CloseTimeout time.Duration

	// Liveness.

	// KeepAliveIdle is how long a connection may be silent before this
	// side pings; then it pings every KeepAliveInterval, and after
	// KeepAliveCount unanswered pings the connection is inviable (see
	// Conn.Viable). The same values configure TCP keepalives. If zero,
	// DefaultKeepAliveIdle (1 s), DefaultKeepAliveInterval (500 ms) and
	// DefaultKeepAliveCount (4).
	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int

	// DropTime is how long data may stay unacknowledged, or the peer
	// silent, before the transport connection is dropped (on Linux also
	// TCP_USER_TIMEOUT). The session then resumes on a new transport
	// connection if it can (ResumeWindow). If zero, DefaultDropTime
	// (10 s); it must be longer than KeepAliveIdle.
	DropTime time.Duration

	// ResumeWindow is how long a connection whose transport broke (a Wi-Fi
	// blip, a changed address, a dropped transport) waits for a new one:
	// the side that dialed redials with backoff, sooner when the network
	// changes or on Conn.Restart, and unacknowledged messages are sent
	// again, so every message arrives exactly once and in order. After the
	// window the connection fails with a [*SessionLostError] listing what
	// was not delivered. If zero, DefaultResumeWindow (30 s); negative
	// turns resume off (a broken transport fails the connection at once).
	ResumeWindow time.Duration

	// RetryConnect makes Connect keep trying while its ctx allows when the
	// peer cannot be reached (refused, no route, timed out): the
	// connection is in state waiting between attempts, which back off
	// from 100 ms to 2 s and are retried at once when the network changes
	// or on Conn.Restart. If false, Connect fails on the first attempt.
	// A refusal by the peer (trust, key, admission) always fails at once.
	RetryConnect bool

	// ViabilityDebounce is how long a viability change must last before
	// OnViability hears of it. If zero, DefaultViabilityDebounce (250 ms).
	ViabilityDebounce time.Duration

	// DisablePathMonitor turns off watching interfaces and addresses
	// (package pathmon), which otherwise feeds viability, re-announcement
	// and reconnection. If false, the monitor runs while the node does.
	DisablePathMonitor bool

	// Callbacks. Each may be nil: then nobody is asked or told.

	// Admit, if set, is asked about each authenticated peer before a
	// listener accepts it. A non-nil error rejects the peer; its text (up to
	// 120 bytes) is sent to the dialer, whose Connect fails with a
	// [*RejectedError] carrying it. ctx ends with the handshake timeout.
	// If nil, every authenticated peer is admitted.
	Admit func(ctx context.Context, p Peer) error

	// OnReject, if set, is told about each incoming connection refused
	// during its handshake: wrong key, untrusted identity, Admit said no, or
	// a malformed upgrade or hello. It runs on the refused connection's
	// goroutine, holding no lock of the library; it must not block for
	// long, since the connection's resources are held until it returns.
	OnReject func(remote net.Addr, err error)

	// OnResourceRefused, if set, is told about each resource offer the node
	// refused before AcceptResource could return it: a name that fails the
	// safety checks (err matches *ResourceNameError, which holds the name
	// as offered) or an offer that breaks the protocol. The sender was told
	// why. It runs holding no lock of the library; it must not block for
	// long.
	OnResourceRefused func(p Peer, err error)

	// OnStateChange, if set, is called for each state change of each
	// connection, from the first (preparing, or ready for a connection a
	// peer opened). A Node's callbacks (this and OnViability) run one at a
	// time, in the order of the changes, on a goroutine that holds no lock
	// of the library, so a callback may call any method of a Conn or the
	// Node, Close included; they may run after the method that caused the
	// change has returned. A callback that blocks delays the later ones.
	OnStateChange func(c *Conn, s State)

	// OnViability, if set, is called when a ready connection becomes
	// inviable or viable again (debounced), and when its session resumed
	// on a new transport connection (Reconnected). It runs as
	// OnStateChange does, in order with it.
	OnViability func(c *Conn, e ViabilityEvent)

	// Beyond the LAN (ice.go).

	// ICEServers are the STUN and TURN servers for paths through NATs
	// (ICE). With any set, a node and a peer that also has some prepare
	// such a path over their session, and the session resumes on it
	// when the LAN path goes (PROTOCOL.md, "Paths beyond the LAN"). If
	// empty, sessions use the LAN transports only.
	ICEServers []ICEServer

	// Logging.

	// Logger receives debug and warning logs. If nil, logs are discarded.
	Logger *slog.Logger
}

// clone returns a deep-enough copy of c with defaults filled in, or the
// first invalid field.
func (c *Config) clone() (*Config, error) {
	if c == nil {
		return nil, &ConfigError{Field: "Config", Value: nil, Reason: "a Config is required: it must choose a security mode"}
	}
	if err := c.contradictions(); err != nil {
		return nil, err
	}
	n := *c
	n.Metadata = maps.Clone(c.Metadata)
	n.TXT = maps.Clone(c.TXT)
	n.Interfaces = slices.Clone(c.Interfaces)
	n.Trust = slices.Clone(c.Trust)
	n.ICEServers = slices.Clone(c.ICEServers)
	if n.Service == "" {
		n.Service = DefaultService
	}
	setDefault(&n.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&n.SendBuffer, DefaultSendBuffer)
	setDefault(&n.ReceiveBuffer, DefaultReceiveBuffer)
	setDefault(&n.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&n.CloseTimeout, DefaultCloseTimeout)
	setDefault(&n.AcceptBacklog, DefaultAcceptBacklog)
	setDefault(&n.StreamBuffer, DefaultStreamBuffer)
	setDefault(&n.StreamBacklog, DefaultStreamBacklog)
	setDefault(&n.MaxDials, DefaultMaxDials)
	setDefault(&n.KeepAliveIdle, DefaultKeepAliveIdle)
	setDefault(&n.KeepAliveInterval, DefaultKeepAliveInterval)
	setDefault(&n.KeepAliveCount, DefaultKeepAliveCount)
	setDefault(&n.DropTime, DefaultDropTime)
	setDefault(&n.ResumeWindow, DefaultResumeWindow)
	setDefault(&n.ViabilityDebounce, DefaultViabilityDebounce)
	setDefault(&n.DatagramIdleTimeout, 24*time.Hour)
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	if err := n.validate(); err != nil {
		return nil, err
	}
	return &n, nil
}

// contradictions returns a ConfigError for the first field set (as the
// caller gave it, before defaults) that another field makes pointless:
// a value the node would ignore is a mistake to report, not to accept.
func (c *Config) contradictions() error {
	bad := func(field string, v any, reason string) error {
		return &ConfigError{Field: "Config." + field, Value: v, Reason: reason}
	}
	switch {
	case c.Hidden && len(c.TXT) > 0:
		return bad("TXT", c.TXT, "set with Hidden, which advertises nothing to carry it")
	case c.DisableDatagrams && c.DatagramIdleTimeout != 0:
		return bad("DatagramIdleTimeout", c.DatagramIdleTimeout, "set with DisableDatagrams, which opens no datagram flow to time out")
	case c.PreferQUIC && c.Transport == TransportAuto && (c.Proxy != "" || c.ProxyFromEnvironment):
		return bad("PreferQUIC", true, "set with Proxy or ProxyFromEnvironment: QUIC cannot follow a proxy, so only TCP is dialed")
	}
	return nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

func (c *Config) validate() error {
	bad := func(field string, v any, reason string) error {
		return &ConfigError{Field: "Config." + field, Value: v, Reason: reason}
	}
	if len(c.Name) > 63 || !utf8.ValidString(c.Name) {
		return bad("Name", c.Name, "must be UTF-8 of at most 63 bytes")
	}
	if err := discovery.ValidateServiceType(c.Service); err != nil {
		return bad("Service", c.Service, err.Error())
	}
	if !isTCPServiceType(c.Service) {
		return bad("Service", c.Service, `must end in "._tcp": it names the WebSocket-over-TCP listener`)
	}
	for k := range c.TXT {
		switch k {
		case txtID, txtVersion, txtTransports:
			return bad("TXT", k, `keys "id", "v" and "tr" are set by nearnet`)
		}
	}
	if _, err := discovery.EncodeTXT(c.TXT); err != nil {
		return bad("TXT", c.TXT, err.Error())
	}
	if len(c.Metadata) > 64 {
		return bad("Metadata", len(c.Metadata), "at most 64 keys")
	}
	metaLen := 0
	for k, v := range c.Metadata {
		if k == "" {
			return bad("Metadata", c.Metadata, "empty key")
		}
		metaLen += len(k) + len(v)
	}
	if metaLen > 4096 {
		return bad("Metadata", metaLen, "at most 4096 bytes of keys and values")
	}
	if c.ListenAddr != "" {
		if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil {
			return bad("ListenAddr", c.ListenAddr, `must be "host:port" (host may be empty)`)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return bad("ListenAddr", c.ListenAddr, "port must be 0-65535")
		}
	}
	switch c.Transport {
	case TransportAuto:
	case TransportTCP, TransportQUIC:
		if c.PreferQUIC {
			return bad("PreferQUIC", true, "only applies to TransportAuto, which dials both transports; Transport is "+c.Transport.String())
		}
	default:
		return bad("Transport", int(c.Transport), "unknown transport; use TransportAuto, TransportTCP or TransportQUIC")
	}
	if c.Transport == TransportQUIC && (c.Proxy != "" || c.ProxyFromEnvironment) {
		return bad("Transport", c.Transport, "QUIC cannot go through an HTTP CONNECT or SOCKS5 proxy: use TransportTCP or TransportAuto with Proxy")
	}
	if err := validateSecurity(c, bad); err != nil {
		return err
	}
	if c.MaxMessageSize < 1 || c.MaxMessageSize > 1<<30 {
		return bad("MaxMessageSize", c.MaxMessageSize, "must be 1 byte to 1 GiB")
	}
	if c.SendBuffer < 1024 {
		return bad("SendBuffer", c.SendBuffer, "must be at least 1024 bytes")
	}
	if c.ReceiveBuffer < 1024 {
		return bad("ReceiveBuffer", c.ReceiveBuffer, "must be at least 1024 bytes")
	}
	if c.HandshakeTimeout < 0 {
		return bad("HandshakeTimeout", c.HandshakeTimeout, "must not be negative")
	}
	if c.CloseTimeout < 0 {
		return bad("CloseTimeout", c.CloseTimeout, "must not be negative")
	}
	if c.DatagramIdleTimeout < 10*time.Millisecond || c.DatagramIdleTimeout > 24*time.Hour {
		return bad("DatagramIdleTimeout", c.DatagramIdleTimeout, "must be 0 (24 hours) or 10ms to 24h")
	}
	if c.AcceptBacklog < 0 {
		return bad("AcceptBacklog", c.AcceptBacklog, "must not be negative")
	}
	if c.StreamBuffer < 4<<10 || c.StreamBuffer > 64<<20 {
		return bad("StreamBuffer", c.StreamBuffer, "must be 0 (256 KiB) or 4 KiB to 64 MiB")
	}
	if c.KeepAliveIdle < 10*time.Millisecond || c.KeepAliveIdle > time.Hour {
		return bad("KeepAliveIdle", c.KeepAliveIdle, "must be 0 (1s) or 10ms to 1h")
	}
	if c.KeepAliveInterval < 10*time.Millisecond || c.KeepAliveInterval > time.Hour {
		return bad("KeepAliveInterval", c.KeepAliveInterval, "must be 0 (500ms) or 10ms to 1h")
	}
	if c.KeepAliveCount < 1 || c.KeepAliveCount > 100 {
		return bad("KeepAliveCount", c.KeepAliveCount, "must be 0 (4) or 1 to 100")
	}
	if c.DropTime <= c.KeepAliveIdle || c.DropTime > 24*time.Hour {
		return bad("DropTime", c.DropTime, "must be 0 (10s) or longer than KeepAliveIdle, at most 24h")
	}
	if c.ResumeWindow > 24*time.Hour {
		return bad("ResumeWindow", c.ResumeWindow, "must be at most 24h (negative: off)")
	}
	if c.ViabilityDebounce < 0 || c.ViabilityDebounce > time.Minute {
		return bad("ViabilityDebounce", c.ViabilityDebounce, "must be 0 (250ms) to 1m")
	}
	if c.MaxDials < 1 || c.MaxDials > 4096 {
		return bad("MaxDials", c.MaxDials, "must be 0 (16) or 1 to 4096")
	}
	if c.StreamBacklog < 1 || c.StreamBacklog > 4096 {
		return bad("StreamBacklog", c.StreamBacklog, "must be 0 (16) or 1 to 4096")
	}
	return validateICE(c, bad)
}

func validateSecurity(c *Config, bad func(string, any, string) error) error {
	if c.Key != nil && *c.Key == (security.Key{}) {
		// Not the key itself in Value, even this one: a Key's String is
		// the secret.
		return bad("Key", "all zeros", "an all-zero key protects nothing (it is what a missing key file read with the error ignored gives): did loading the key file fail? Make one with security.GenerateKey or nearnet keygen")
	}
	hasKey := c.Key != nil
	hasPins := len(c.Trust) > 0 || c.KnownPeersFile != ""
	hasRoots := c.Roots != nil
	if c.TrustOnFirstUse && c.KnownPeersFile == "" {
		return bad("TrustOnFirstUse", true, "needs KnownPeersFile to record what it trusts")
	}
	switch c.Security {
	case SecurityAuto:
		n := 0
		for _, b := range []bool{hasKey, hasPins, hasRoots} {
			if b {
				n++
			}
		}
		switch {
		case n == 0:
			return bad("Security", c.Security, "no security configured: set Key, Trust, KnownPeersFile or Roots, or set Security to SecurityNone to run without it")
		case n > 1:
			return bad("Security", c.Security, "more than one of Key, Trust/KnownPeersFile and Roots is set: name the mode in Security")
		case hasKey:
			c.Security = SecurityPSK
		case hasPins:
			c.Security = SecurityPinned
		default:
			c.Security = SecurityPKI
		}
	case SecurityNone:
		if hasKey || hasPins || hasRoots {
			return bad("Security", c.Security, "SecurityNone with Key, Trust, KnownPeersFile or Roots set: they would be ignored")
		}
	case SecurityPSK:
		if !hasKey {
			return bad("Key", nil, "SecurityPSK needs a Key")
		}
	case SecurityPinned:
		if !hasPins {
			return bad("Trust", nil, "SecurityPinned needs Trust or KnownPeersFile")
		}
	case SecurityPKI:
		if !hasRoots {
			return bad("Roots", nil, "SecurityPKI needs Roots")
		}
	default:
		return bad("Security", int(c.Security), "unknown security mode; use SecurityAuto, SecurityNone, SecurityPSK, SecurityPinned or SecurityPKI")
	}
	return nil
}

func isTCPServiceType(s string) bool {
	return len(s) > 5 && s[len(s)-5:] == "._tcp"
}
