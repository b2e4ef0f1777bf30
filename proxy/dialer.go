package proxy

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	xproxy "golang.org/x/net/proxy"
)

// DefaultTimeout bounds a whole dial through a proxy (the connection to the
// proxy and the CONNECT exchange or SOCKS5 negotiation) when the forward
// dialer's Timeout is zero; otherwise that Timeout does. Either way the
// context's deadline applies too, whichever comes first. It keeps a proxy
// that accepts connections but never answers from hanging a dial.
const DefaultTimeout = 30 * time.Second

// Dialer dials TCP connections through one HTTP CONNECT or SOCKS5 proxy.
// It is safe for concurrent use by multiple goroutines and holds no
// connections between dials; a Dialer never changes after [New].
type Dialer struct {
	scheme   string      // "http", "https", "socks5" or "socks5h"
	addr     string      // the proxy's host:port
	host     string      // the proxy's host, the TLS server name for https
	redacted string      // the URL with the password replaced, for String and errors
	creds    bool        // credentials were given
	auth     string      // the Proxy-Authorization value (http, https)
	socks    socksDialer // the SOCKS5 client (socks5, socks5h)
	forward  net.Dialer  // a copy of the caller's
	timeout  time.Duration
	tls      *tls.Config // https only
	secrets  []string    // texts that must never reach an error message
}

// New returns a Dialer for the proxy at proxyURL, which is one of
//
//	http://[user:password@]host[:port]    HTTP CONNECT (RFC 9110 section 9.3.6), Basic credentials; port 80 if none
//	https://[user:password@]host[:port]   the same over TLS to the proxy (system roots); port 443 if none
//	socks5://[user:password@]host[:port]  SOCKS5 (RFC 1928), username/password (RFC 1929); the target is resolved locally; port 1080 if none
//	socks5h://[user:password@]host[:port] the same, with the target's host name resolved by the proxy
//
// User name and password are percent-decoded from the URL. forward makes the
// TCP connection to the proxy (its Timeout, KeepAliveConfig, LocalAddr,
// Resolver, Control...); nil means a zero net.Dialer. New copies it and
// does not keep proxyURL. A URL that cannot be used is a [*URLError] that
// says what is wrong and never holds the password.
func New(proxyURL *url.URL, forward *net.Dialer) (*Dialer, error) {
	if proxyURL == nil {
		return nil, &URLError{Reason: "no URL"}
	}
	shown := proxyURL.Redacted()
	if proxyURL.Opaque != "" {
		// "user:pass@host:port" parses as scheme "user" with an opaque
		// part that Redacted leaves alone.
		shown, _ = redactRaw(proxyURL.String())
	}
	bad := func(format string, args ...any) error {
		return &URLError{URL: shown, Reason: fmt.Sprintf(format, args...)}
	}
	d := &Dialer{scheme: strings.ToLower(proxyURL.Scheme)}
	var defPort string
	switch d.scheme {
	case "http":
		defPort = "80"
	case "https":
		defPort = "443"
	case "socks5", "socks5h":
		defPort = "1080"
	case "":
		return nil, bad("no scheme; want http://, https://, socks5:// or socks5h://")
	default:
		return nil, bad("scheme %q is not supported; want http, https, socks5 or socks5h", proxyURL.Scheme)
	}
	if proxyURL.Opaque != "" || proxyURL.Host == "" {
		return nil, bad("no host; want %s://[user:password@]host:port", d.scheme)
	}
	if p := proxyURL.Path; p != "" && p != "/" {
		return nil, bad("has a path (%q); want %s://[user:password@]host:port", p, d.scheme)
	}
	if proxyURL.RawQuery != "" || proxyURL.Fragment != "" || proxyURL.ForceQuery {
		return nil, bad("has a query or fragment; want %s://[user:password@]host:port", d.scheme)
	}
	d.host = proxyURL.Hostname()
	if d.host == "" {
		return nil, bad("no host; want %s://[user:password@]host:port", d.scheme)
	}
	port := proxyURL.Port()
	if port == "" {
		port = defPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, bad("port %q is not a number from 1 to 65535", port)
	}
	d.addr = net.JoinHostPort(d.host, port)

	var user, pass string
	if proxyURL.User != nil {
		user = proxyURL.User.Username()
		pass, _ = proxyURL.User.Password()
		d.creds = true
		// The password as the URL spells it too: a cause quoting the URL
		// would show it undecoded.
		d.secrets = append(d.secrets, pass, url.QueryEscape(pass), url.PathEscape(pass))
	}
	canon := &url.URL{Scheme: d.scheme, User: proxyURL.User, Host: d.addr}
	d.redacted = canon.Redacted()
	// A password that is also a substring of the redacted URL (say "127")
	// would mangle the URL in messages while protecting nothing more.
	d.secrets = filterSecrets(d.secrets, d.redacted)

	switch d.scheme {
	case "http", "https":
		if d.creds {
			if user == "" {
				return nil, bad("empty user name; Basic authentication needs one")
			}
			if strings.Contains(user, ":") {
				return nil, bad("user name contains ':', which Basic authentication (RFC 7617) cannot carry")
			}
			token := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
			d.auth = "Basic " + token
			d.secrets = append(d.secrets, token)
		}
		if d.scheme == "https" {
			d.tls = &tls.Config{ServerName: d.host, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
		}
	case "socks5", "socks5h":
		var auth *xproxy.Auth
		if d.creds {
			if len(user) < 1 || len(user) > 255 || len(pass) > 255 {
				return nil, bad("SOCKS5 needs a user name of 1 to 255 bytes and a password of at most 255 (RFC 1929)")
			}
			auth = &xproxy.Auth{User: user, Password: pass}
		}
		sd, err := xproxy.SOCKS5("tcp", d.addr, auth, nil)
		if err != nil {
			return nil, bad("%v", err)
		}
		sc, ok := sd.(socksDialer)
		if !ok {
			return nil, bad("golang.org/x/net/proxy's SOCKS5 dialer has no DialWithConn method (%T)", sd)
		}
		d.socks = sc
	}
	if forward != nil {
		d.forward = *forward
	}
	d.timeout = DefaultTimeout
	if d.forward.Timeout > 0 {
		d.timeout = d.forward.Timeout
	}
	return d, nil
}

func filterSecrets(secrets []string, public string) []string {
	out := secrets[:0]
	for _, s := range secrets {
		if s != "" && !strings.Contains(public, s) {
			out = append(out, s)
		}
	}
	return out
}

// Parse is [New] for a URL in text, with a nil forward dialer. A URL that
// does not parse is a [*URLError] whose text shows it with the password
// replaced by "xxxxx".
func Parse(rawURL string) (*Dialer, error) { return parse(rawURL, nil) }

// ParseWith is [Parse] with a forward dialer, as [New] takes.
func ParseWith(rawURL string, forward *net.Dialer) (*Dialer, error) { return parse(rawURL, forward) }

func parse(rawURL string, forward *net.Dialer) (*Dialer, error) {
	if !strings.Contains(rawURL, "://") {
		red, _ := redactRaw(rawURL)
		return nil, &URLError{URL: red, Reason: "no scheme; want http://, https://, socks5:// or socks5h://"}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		red, pass := redactRaw(rawURL)
		reason := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			reason = ue.Err.Error() // without url.Error's quote of the whole URL
		}
		return nil, &URLError{URL: red, Reason: scrub(reason, filterSecrets([]string{pass}, red))}
	}
	return New(u, forward)
}

// redactRaw replaces the password in a URL that may not parse, by the same
// rule url.Parse follows: the userinfo ends at the last '@' of the
// authority, the password starts after its first ':'.
func redactRaw(raw string) (redacted, password string) {
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	}
	rest := raw[start:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw, ""
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return raw, ""
	}
	password = rest[colon+1 : at]
	return raw[:start+colon+1] + "xxxxx" + raw[start+at:], password
}

// String returns the proxy URL with the password replaced by "xxxxx", and
// the port made explicit: "socks5://alice:xxxxx@127.0.0.1:1080".
func (d *Dialer) String() string { return d.redacted }

// Addr returns the proxy's address, host:port.
func (d *Dialer) Addr() string { return d.addr }

// socksDialer is the part of golang.org/x/net/proxy's SOCKS5 dialer that
// runs the negotiation on a connection we made, which lets each failure be
// told apart (see classifySOCKS).
type socksDialer interface {
	DialWithConn(ctx context.Context, c net.Conn, network, address string) (net.Addr, error)
}

var aLongTimeAgo = time.Unix(1, 0)

// DialContext connects to addr (host:port) on network ("tcp", "tcp4" or
// "tcp6"; the address family matters only where the target's name is
// resolved here, with socks5://, since elsewhere the proxy resolves it)
// through the proxy and returns the connection, ready for the
// target's bytes: TLS or any other protocol can run on it as on a direct
// connection. Its RemoteAddr is the proxy's address. Do not rely on its
// concrete type: it is the connection to the proxy, wrapped when the proxy
// sent the target's first bytes along with its answer.
//
// ctx bounds every step (connecting to the proxy, the TLS handshake with an
// https proxy, the CONNECT exchange or the SOCKS5 negotiation), and so does
// the forward dialer's Timeout, or [DefaultTimeout] if that is zero. Once
// DialContext has returned a connection, ctx no longer affects it.
//
// A failure is an [*Error] whose Kind says what happened.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, d.fail(BadTarget, 0, addr, 0, fmt.Errorf("network %q cannot go through a proxy; want tcp, tcp4 or tcp6", network))
	}
	host, port, err := splitTarget(addr)
	if err != nil {
		return nil, d.fail(BadTarget, 0, addr, 0, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && (network == "tcp4" && !ip.Is4() || network == "tcp6" && !ip.Is6()) {
		return nil, d.fail(BadTarget, 0, addr, 0, fmt.Errorf("%s is not an address for %s", host, network))
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()

	target := net.JoinHostPort(host, port)
	if d.scheme == "socks5" {
		if _, err := netip.ParseAddr(host); err != nil {
			start := time.Now()
			ip, err := d.resolve(ctx, network, host)
			if err != nil {
				if e := d.ctxFailure(ctx, PhaseResolve, addr, err, start); e != nil {
					return nil, e
				}
				return nil, d.fail(BadTarget, PhaseResolve, addr, 0, err)
			}
			target = net.JoinHostPort(ip.String(), port)
		}
	}

	start := time.Now()
	c, err := d.forward.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		if e := d.ctxFailure(ctx, PhaseConnect, addr, err, start); e != nil {
			return nil, e
		}
		return nil, d.fail(ProxyUnreachable, PhaseConnect, addr, 0, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })

	conn, e := d.handshake(ctx, c, target)
	if e != nil {
		stop()
		c.Close()
		e.Target = addr
		if e.io {
			if ce := d.ctxFailure(ctx, e.Phase, addr, e.Err, e.start); ce != nil {
				return nil, ce
			}
		}
		return nil, e
	}
	if !stop() {
		// ctx ended as the exchange finished: its deadline may be set on c
		// at any moment, so c is not fit to return.
		c.Close()
		return nil, d.ctxFailure(ctx, d.lastPhase(), addr, ctx.Err(), start)
	}
	c.SetDeadline(time.Time{})
	return conn, nil
}

// lastPhase is the last phase of a dial, for a ctx that ended just after it.
func (d *Dialer) lastPhase() Phase {
	if d.socks != nil {
		return PhaseSOCKSConnect
	}
	return PhaseHTTPConnect
}

// handshake runs the proxy protocol on c. Its errors have io set when they
// are I/O failures, which may be a timeout or cancellation.
func (d *Dialer) handshake(ctx context.Context, c net.Conn, target string) (net.Conn, *Error) {
	if d.tls != nil {
		start := time.Now()
		tc := tls.Client(c, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			e := d.fail(ProxyUnreachable, PhaseTLS, target, 0, err)
			e.io, e.start = true, start
			return nil, e
		}
		c = tc
	}
	if d.socks != nil {
		return d.connectSOCKS(ctx, c, target)
	}
	return d.connectHTTP(c, target)
}

func (d *Dialer) resolve(ctx context.Context, network, host string) (netip.Addr, error) {
	r := d.forward.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ipnet := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
	ips, err := r.LookupNetIP(ctx, ipnet, host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("no %s address for %s", ipnet, host)
	}
	return ips[0].Unmap(), nil
}

func (d *Dialer) fail(kind Kind, phase Phase, target string, status int, err error) *Error {
	return &Error{Kind: kind, Phase: phase, Proxy: d.redacted, Target: target, Status: status, Err: err, secrets: d.secrets}
}

// ctxFailure returns the Timeout or Canceled error for err, an error of
// phase (which started at start), if ctx has ended or err is a deadline;
// nil otherwise.
func (d *Dialer) ctxFailure(ctx context.Context, phase Phase, target string, err error, start time.Time) *Error {
	cerr := ctx.Err()
	if cerr == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if cerr == nil {
		cerr = context.DeadlineExceeded
	}
	kind := Timeout
	if errors.Is(cerr, context.Canceled) {
		kind = Canceled
	}
	if err != nil && err != cerr {
		cerr = fmt.Errorf("%w (%w)", cerr, err)
	}
	e := d.fail(kind, phase, target, 0, cerr)
	e.waited = time.Since(start)
	return e
}

// splitTarget checks a host:port to dial through a proxy: the host an IP
// address or a DNS name, the port a number or a service name.
func splitTarget(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", err
	}
	if host == "" {
		return "", "", errors.New("no host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", "", errors.New("an IPv6 zone means nothing to a proxy")
		}
	} else if len(host) > 253 {
		return "", "", errors.New("host name longer than 253 bytes")
	} else {
		for _, r := range host {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
				return "", "", fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
			}
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		p, lerr := net.LookupPort("tcp", port)
		if lerr != nil {
			return "", "", fmt.Errorf("port %q is not a number", port)
		}
		n = p
	}
	if n < 1 || n > 65535 {
		return "", "", fmt.Errorf("port %s out of range 1-65535", port)
	}
	return host, strconv.Itoa(n), nil
}
