package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind says what went wrong in a dial through a proxy.
type Kind int

const (
	// ProxyUnreachable: no connection to the proxy itself (nothing listens
	// there, its host name does not resolve, the network is unreachable, or
	// the TLS handshake with an https:// proxy failed).
	ProxyUnreachable Kind = iota + 1
	// AuthRequired: the proxy wants credentials and none were given (HTTP
	// 407, or a SOCKS5 proxy that accepts no method without them).
	AuthRequired
	// AuthFailed: the proxy rejected the credentials given (HTTP 407 or 401
	// with credentials sent, SOCKS5 username/password failure).
	AuthFailed
	// TargetRefused: the proxy answered but would not or could not connect
	// to the target: an HTTP status other than 2xx, 401 and 407 (403 not
	// allowed, 502/503/504 cannot reach, ...), or a SOCKS5 reply code other
	// than success (not allowed by ruleset, connection refused, host
	// unreachable, ...). [Error.Status] holds the code.
	TargetRefused
	// ProtocolError: the proxy's answer is not what the protocol says, or
	// it closed the connection without answering; often the URL's scheme
	// does not match the kind of proxy at that address.
	ProtocolError
	// Timeout: the context's deadline (or the dial's own bound, see
	// [Dialer.DialContext]) passed; [Error.Phase] says while waiting for
	// what. An *Error of this kind has Timeout() true and wraps
	// context.DeadlineExceeded.
	Timeout
	// Canceled: the context was canceled; the *Error wraps
	// context.Canceled.
	Canceled
	// BadTarget: the address to dial is malformed, its host does not
	// resolve (socks5:// resolves locally), or the network is not TCP.
	BadTarget
)

var kindNames = [...]string{"", "proxy unreachable", "proxy auth required", "proxy auth failed",
	"target refused", "proxy protocol error", "timeout", "canceled", "bad target"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Phase is the step of a dial through a proxy.
type Phase int

const (
	PhaseResolve       Phase = iota + 1 // resolving the target locally (socks5:// only)
	PhaseConnect                        // the TCP connection to the proxy
	PhaseTLS                            // the TLS handshake with an https:// proxy
	PhaseHTTPConnect                    // the HTTP CONNECT request and its response
	PhaseSOCKSGreeting                  // SOCKS5 method negotiation
	PhaseSOCKSAuth                      // SOCKS5 username/password sub-negotiation (RFC 1929)
	PhaseSOCKSConnect                   // the SOCKS5 CONNECT request and its reply
)

var phaseNames = [...]string{"", "resolve target", "connect to proxy", "TLS handshake with proxy",
	"HTTP CONNECT", "SOCKS5 greeting", "SOCKS5 authentication", "SOCKS5 CONNECT"}

func (p Phase) String() string {
	if p > 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "Phase(" + strconv.Itoa(int(p)) + ")"
}

// waitingFor completes "did not answer ..." for a timeout in p.
var waitingFor = [...]string{"", "", "", "the TLS handshake", "the CONNECT request",
	"the SOCKS5 greeting", "the SOCKS5 username/password authentication", "the SOCKS5 CONNECT request"}

// Error is the error of a failed [Dialer.DialContext]. Its text says what
// happened and what to do about it. Neither it nor its fields hold the proxy
// password or the encoded credentials; the user name may appear in Proxy.
type Error struct {
	Kind   Kind
	Phase  Phase  // the step that failed
	Proxy  string // the proxy URL with the password redacted, as [Dialer.String]
	Target string // the address dialed through the proxy
	// Status is the proxy's answer code when it gave one: the HTTP status
	// of the CONNECT response, or the SOCKS5 reply code (RFC 1928 section
	// 6) for a SOCKS5 CONNECT that failed. Zero otherwise.
	Status int
	Err    error // the cause; for Timeout and Canceled it wraps ctx.Err()

	waited  time.Duration // how long the phase ran, for Timeout
	secrets []string      // scrubbed from the text, should a cause quote one
	io      bool          // an I/O failure, which may stand for a timeout
	start   time.Time     // when the phase started, with io
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the dial timed out (Kind == Timeout); with
// Temporary it makes *Error a [net.Error].
func (e *Error) Timeout() bool { return e.Kind == Timeout }

// Temporary is false: it exists only to satisfy [net.Error].
func (e *Error) Temporary() bool { return false }

func (e *Error) Error() string {
	var s string
	cause := ""
	if e.Err != nil {
		// The rest of the text is ours and holds no password; the cause
		// may quote what a proxy sent.
		cause = scrub(e.Err.Error(), e.secrets)
	}
	switch e.Kind {
	case ProxyUnreachable:
		s = fmt.Sprintf("cannot reach proxy %s: %s; check the proxy's address and that it is running", e.Proxy, cause)
		if e.Phase == PhaseTLS {
			s = fmt.Sprintf("TLS handshake with proxy %s failed: %s", e.Proxy, cause)
		}
	case AuthRequired:
		s = fmt.Sprintf("proxy %s requires credentials%s; give them in the proxy URL as scheme://user:password@host:port",
			e.Proxy, e.code())
	case AuthFailed:
		s = fmt.Sprintf("proxy %s rejected the credentials%s; check the user name and password", e.Proxy, e.code())
		if e.Phase == PhaseSOCKSGreeting {
			s = fmt.Sprintf("proxy %s accepts neither username/password nor no authentication; it needs a method nearnet does not offer", e.Proxy)
		}
	case TargetRefused:
		s = fmt.Sprintf("proxy %s would not connect to %s: %s", e.Proxy, e.Target, cause)
	case ProtocolError:
		s = fmt.Sprintf("proxy %s gave no valid answer to the %s: %s; check that the URL's scheme matches the kind of proxy",
			e.Proxy, e.Phase, cause)
	case Timeout:
		w := e.waited.Round(10 * time.Millisecond)
		if w >= time.Second {
			w = w.Round(100 * time.Millisecond)
		}
		if e.Phase == PhaseConnect || e.Phase == PhaseResolve {
			s = fmt.Sprintf("could not %s %s within %v", e.Phase, e.Proxy, w)
			if e.Phase == PhaseResolve {
				s = fmt.Sprintf("could not resolve %s within %v (for proxy %s)", e.Target, w, e.Proxy)
			}
		} else {
			s = fmt.Sprintf("proxy %s did not answer %s within %v", e.Proxy, waitingFor[e.Phase], w)
			if e.Phase == PhaseSOCKSGreeting {
				s += "; check that it is a SOCKS5 proxy"
			}
		}
	case Canceled:
		s = fmt.Sprintf("dial to %s through proxy %s canceled during %s", e.Target, e.Proxy, e.Phase)
	case BadTarget:
		s = fmt.Sprintf("cannot dial %q through proxy %s: %s", e.Target, e.Proxy, cause)
	default:
		s = fmt.Sprintf("dial to %s through proxy %s failed in %s: %s", e.Target, e.Proxy, e.Phase, cause)
	}
	return "proxy: " + s
}

func (e *Error) code() string {
	switch {
	case e.Status == 0:
		return ""
	case e.Phase == PhaseHTTPConnect:
		return fmt.Sprintf(" (HTTP %d)", e.Status)
	default:
		return fmt.Sprintf(" (status %d)", e.Status)
	}
}

// scrub replaces every non-empty secret in s.
func scrub(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "xxxxx")
		}
	}
	return s
}

// URLError reports a proxy URL that cannot be used. Neither URL nor Reason
// holds the password.
type URLError struct {
	URL    string // the URL as given, with the password replaced by "xxxxx"
	Reason string // what is wrong with it
}

func (e *URLError) Error() string {
	return fmt.Sprintf("proxy: bad proxy URL %q: %s", e.URL, e.Reason)
}
