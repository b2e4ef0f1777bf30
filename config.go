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

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/internal/config"
	"github.com/nearnet/nearnet/internal/icepath"
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
	// the KnownPeersFile (or is added there on first use if TrustOnFirstUse),
	// or paired by a short code (Node.OfferPairing). Set explicitly with
	// neither Trust nor KnownPeersFile, the node trusts only the peers it
	// pairs with.
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
	DefaultMemoryBudget     = 512 << 20 // or 16 × MaxMessageSize if more; see Config.MemoryBudget

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

	// Domain, if set, is a wide-area DNS-SD domain such as "example.test"
	// (RFC 6763 over unicast DNS; PROTOCOL.md, "Wide-area discovery"):
	// with TSIGKey, Listen also registers the node there with DNS UPDATE,
	// refreshes the registration and removes it on Close; Browse also
	// lists the peers registered there (Advert.Domain says where a peer
	// was seen), and Connect finds them by name or PeerID, preferring the
	// link's advert when a peer is seen both ways. It needs DNSServer. If
	// empty, discovery stays on the link (mDNS).
	Domain string

	// DNSServer is the address of the DNS server authoritative for
	// Domain, "host:port" (port 53 if omitted); queries and updates go to
	// it directly. Required with Domain; set without Domain it is an error.
	DNSServer string

	// TSIGKey signs the updates that register the node in Domain
	// (discovery.LoadTSIGKeyFile reads a key file; it is never printed).
	// The server must allow updates with it: a key it rejects makes Listen
	// return at once a *discovery.DNSError matching discovery.ErrTSIGKey
	// (the node still listens and advertises on the link). If zero, the node browses Domain without
	// registering. Set without Domain, or with Hidden, it is an error.
	TSIGKey discovery.TSIGKey

	// DNSRefresh is how often the registration in Domain is refreshed
	// and Browse polls the server for changes. A node that stops
	// refreshing (it crashed) disappears from browsing after 3 ×
	// DNSRefresh, its lease. If zero, 30 seconds; at least 1 second. Set
	// without Domain it is an error.
	DNSRefresh time.Duration

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

	// Tunnel, if not nil, runs the node on a userspace TCP/IP stack whose
	// packets go through the application's packet device (a *tunnel.Stack
	// from package tunnel's New): every connection, listener and datagram
	// socket (TCP and QUIC) is the stack's, none the host's; the wire is
	// the same. Its discovery runs over the stack where the device carries
	// multicast (tunnel.Options.Multicast), on the stack's interface
	// (Interfaces does not apply); otherwise Listen advertises nothing and
	// Browse returns [ErrNoDiscovery]: connect by address. The node does
	// not close the stack: close it after the node. If nil, the host's.
	Tunnel Tunnel

	// TunnelWithHost, with Tunnel, keeps the host's sockets too: Listen
	// listens on both (with the same port number), Connect dials an
	// address on the stack's networks ([Tunnel.Contains]) through the
	// stack and any other through the host, and discovery runs on the host.
	// A peer reached both ways is one Conn. If false, the stack alone.
	TunnelWithHost bool

	// ICEServers are the STUN and TURN servers for paths through NATs
	// (ICE). With any set, a node and a peer that also has some prepare
	// such a path over their session, and the session resumes on it
	// when the LAN path goes (PROTOCOL.md, "Paths beyond the LAN"). If
	// empty, sessions use the LAN transports only.
	ICEServers []ICEServer

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

	// MemoryBudget bounds the message bytes the node holds for all its
	// peers together: half for what was received and not yet taken (from
	// its frame header until the application's next ReceiveMessage after
	// the one that returned it), half for what was sent and not yet
	// written or acknowledged. A connection may take more only while what
	// is left of a half is at least what it then holds of it; otherwise the
	// node stops reading from it (flow control pushes back on the peer) or
	// SendMessage waits for the network to take what it holds. SendMessage
	// never waits for an ack on account of the budget: the resume log
	// forgets what does not fit, and a connection that then loses its
	// transport may end with a SessionLostError (PROTOCOL.md, "What a peer
	// can make a node hold"). Each connection costs a fixed amount on top.
	// If zero, DefaultMemoryBudget (512 MiB) or 16 × MaxMessageSize if
	// more; negative: no bound; else at least 16 × MaxMessageSize.
	MemoryBudget int64

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
	// inviable or viable again (debounced), when its session resumed on a
	// new transport connection (Reconnected), and when no path beyond the
	// LAN could be prepared (PathUnavailable). It runs as OnStateChange
	// does, in order with it.
	OnViability func(c *Conn, e ViabilityEvent)

	// OnWideArea, if set, hears when the registration in Domain starts
	// failing (with the error; it is retried every DNSRefresh) or works
	// again (nil). A first registration that fails for a transient reason
	// (no answer, SERVFAIL) is reported here too, since Listen does not fail
	// for it; a permanent failure is Listen's error instead. It runs as
	// OnStateChange does. Not allowed without Domain and TSIGKey.
	OnWideArea func(err error)

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
	if err := config.Contradictions(c.values()); err != nil {
		return nil, exported(err)
	}
	n := *c
	n.Metadata = maps.Clone(c.Metadata)
	n.TXT = maps.Clone(c.TXT)
	n.Interfaces = slices.Clone(c.Interfaces)
	n.Trust = slices.Clone(c.Trust)
	n.TSIGKey.Secret = slices.Clone(c.TSIGKey.Secret)
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
	setDefault(&n.MemoryBudget, max(DefaultMemoryBudget, 16*int64(n.MaxMessageSize)))
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
	mode, err := config.Check(n.values())
	if err != nil {
		return nil, exported(err)
	}
	if n.Domain != "" {
		if err := validateWideArea(&n); err != nil {
			return nil, err
		}
	}
	n.Security = SecurityMode(mode)
	return &n, nil
}

// values are c's fields the rules of internal/config check.
func (c *Config) values() *config.Values {
	return &config.Values{
		Name: c.Name, Service: c.Service, ListenAddr: c.ListenAddr, TXT: c.TXT, Metadata: c.Metadata,
		Hidden: c.Hidden, PreferQUIC: c.PreferQUIC, Transport: c.Transport, TransportN: int(c.Transport),
		TransportString: c.Transport.String(), Proxy: c.Proxy, ProxyFromEnvironment: c.ProxyFromEnvironment,
		DisableDatagrams: c.DisableDatagrams, DatagramIdleTimeout: c.DatagramIdleTimeout,
		Security: c.Security, SecurityN: int(c.Security), HasKey: c.Key != nil,
		ZeroKey: c.Key != nil && *c.Key == (security.Key{}), HasRoots: c.Roots != nil, Trust: len(c.Trust),
		KnownPeersFile: c.KnownPeersFile, TrustOnFirstUse: c.TrustOnFirstUse,
		MaxMessageSize: c.MaxMessageSize, SendBuffer: c.SendBuffer, ReceiveBuffer: c.ReceiveBuffer,
		StreamBuffer: c.StreamBuffer, AcceptBacklog: c.AcceptBacklog, StreamBacklog: c.StreamBacklog,
		MaxDials: c.MaxDials, KeepAliveCount: c.KeepAliveCount, HandshakeTimeout: c.HandshakeTimeout,
		CloseTimeout: c.CloseTimeout, KeepAliveIdle: c.KeepAliveIdle, KeepAliveInterval: c.KeepAliveInterval,
		DropTime: c.DropTime, ResumeWindow: c.ResumeWindow, ViabilityDebounce: c.ViabilityDebounce,
		Domain: c.Domain, DNSServer: c.DNSServer, TSIGKey: c.TSIGKey.String(), HasTSIGKey: !c.TSIGKey.IsZero(),
		HasOnWideArea: c.OnWideArea != nil, DNSRefresh: c.DNSRefresh,
		MemoryBudget: c.MemoryBudget,

		ICEServers: icepath.Servers(c.ICEServers),
		Tunnel:     c.Tunnel != nil, TunnelWithHost: c.TunnelWithHost,
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
