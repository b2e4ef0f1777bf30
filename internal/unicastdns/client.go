package unicastdns

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// Config says which server to talk to and how.
type Config struct {
	// Server is the DNS server's address, "host:port" or a bare host (port 53).
	// Required.
	Server string
	// Zone is the zone updates go to, e.g. "example.test". Required for
	// [Client.Update]; queries may name anything.
	Zone string
	// Key signs updates (and their responses must be signed with it). The
	// zero Key sends updates unsigned, which only a server that allows
	// updates by address accepts.
	Key Key
	// Timeout bounds one attempt (one exchange, UDP and a TCP retry after
	// truncation). If zero, 3 seconds.
	Timeout time.Duration
	// Attempts is how many times a transient failure is tried in all. If
	// zero, 3; 1 means no retry.
	Attempts int
}

// Client queries and updates one server. It is safe for concurrent use by
// multiple goroutines and holds no sockets between calls.
type Client struct {
	cfg     Config
	server  string
	zone    string
	keyName string // canonical, "" without a key
	alg     string // miekg's algorithm name
	secret  map[string]string
}

// New checks cfg (a *nnerr.ConfigError names a bad field) and returns a
// Client.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		return nil, &nnerr.ConfigError{Field: "DNS server", Value: "", Reason: "required: host:port of the DNS server"}
	}
	server := cfg.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		if ip, perr := netip.ParseAddr(server); perr == nil && ip.Is6() {
			server = net.JoinHostPort(server, "53") // a bare IPv6 address
		} else if !strings.Contains(server, ":") {
			server = net.JoinHostPort(server, "53")
		} else {
			return nil, &nnerr.ConfigError{Field: "DNS server", Value: cfg.Server, Reason: "want host:port"}
		}
	}
	if cfg.Zone != "" {
		if _, ok := dns.IsDomainName(cfg.Zone); !ok {
			return nil, &nnerr.ConfigError{Field: "DNS zone", Value: cfg.Zone, Reason: "must be a domain name"}
		}
	}
	if cfg.Timeout < 0 {
		return nil, &nnerr.ConfigError{Field: "DNS timeout", Value: cfg.Timeout, Reason: "must not be negative (zero means 3s)"}
	}
	if cfg.Attempts < 0 {
		return nil, &nnerr.ConfigError{Field: "DNS attempts", Value: cfg.Attempts, Reason: "must not be negative (zero means 3)"}
	}
	if err := cfg.Key.Validate("TSIG key"); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 3
	}
	c := &Client{cfg: cfg, server: server}
	if cfg.Zone != "" {
		c.zone = dns.CanonicalName(cfg.Zone)
	}
	if !cfg.Key.IsZero() {
		c.keyName = dns.CanonicalName(cfg.Key.Name)
		c.alg = algorithms[cfg.Key.algorithm()]
		c.secret = map[string]string{c.keyName: base64.StdEncoding.EncodeToString(cfg.Key.Secret)}
	}
	return c, nil
}

// Server returns the server's address as host:port.
func (c *Client) Server() string { return c.server }

// Zone returns the zone updates go to, as a canonical domain name ("example.test."),
// or "" if none was configured.
func (c *Client) Zone() string { return c.zone }

// Query asks the server for the records of the given type at name and
// returns the answer section. A name that does not exist (NXDOMAIN) or has
// no records of the type gives no records and no error.
func (c *Client) Query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	r, err := c.exchange(ctx, "query", dns.Fqdn(name), m, false)
	if err != nil {
		return nil, err
	}
	return r.Answer, nil
}

// Update sends u to the configured zone, signed with the key. It returns
// when the server has applied it, or with an [*Error]; a permanent one
// (a rejected key, REFUSED, NOTZONE...) is returned at once, without retry.
func (c *Client) Update(ctx context.Context, u *Update) error {
	if c.zone == "" {
		return &nnerr.ConfigError{Field: "DNS zone", Value: "", Reason: "required for updates"}
	}
	m := new(dns.Msg)
	m.SetUpdate(c.zone)
	m.Answer = append(m.Answer, u.prereqs...) // the prerequisite section
	m.Ns = append(m.Ns, u.ops...)
	_, err := c.exchange(ctx, "update", c.zone, m, true)
	return err
}

// exchange sends m, retrying transient failures, and returns a response
// whose RCODE is NOERROR (or NXDOMAIN for a query).
func (c *Client) exchange(ctx context.Context, op, name string, m *dns.Msg, sign bool) (*dns.Msg, error) {
	backoff := 200 * time.Millisecond
	var last error
	for attempt := 0; attempt < c.cfg.Attempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, c.fail(op, name, -1, 0, ctx.Err(), true, last)
			case <-t.C:
			}
			backoff *= 2
		}
		r, err := c.once(ctx, op, name, m, sign)
		if err == nil {
			return r, nil
		}
		last = err
		var e *Error
		if errors.As(err, &e) && e.permanent {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, last
}

func (c *Client) fail(op, name string, rcode, tsigErr int, err error, permanent bool, last error) *Error {
	if last != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		var e *Error
		if errors.As(last, &e) && e.Err != nil {
			err = errors.Join(err, e.Err)
		}
	}
	return &Error{Op: op, Name: strings.TrimSuffix(name, "."), Server: c.server, Rcode: rcode, TSIGError: tsigErr, Err: err, permanent: permanent}
}

// once makes one attempt: UDP, then TCP if the answer was truncated or the
// request is too large for a plain UDP message.
func (c *Client) once(ctx context.Context, op, name string, m *dns.Msg, sign bool) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	m = m.Copy()
	m.Id = dns.Id()
	signed := sign && c.keyName != ""
	if signed {
		m.SetTsig(c.keyName, c.alg, 300, time.Now().Unix())
	}
	net := "udp"
	if m.Len() > dns.MinMsgSize {
		net = "tcp"
	}
	for {
		cl := &dns.Client{Net: net, Timeout: c.cfg.Timeout, UDPSize: 1232}
		if signed {
			cl.TsigSecret = c.secret
		}
		r, _, err := cl.ExchangeContext(ctx, m, c.server)
		if r != nil && r.Truncated && net == "udp" {
			net = "tcp"
			continue
		}
		return c.check(op, name, r, err, signed)
	}
}

// check classifies a response (or its absence).
func (c *Client) check(op, name string, r *dns.Msg, err error, signed bool) (*dns.Msg, error) {
	// miekg/dns reports a NOTAUTH response to a signed request as ErrAuth
	// (with the whole message), a MAC that does not verify as ErrSig.
	tsigFailure := errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrTime) || errors.Is(err, dns.ErrAuth)
	if r == nil || (err != nil && !tsigFailure) {
		// No usable response: network trouble, a timeout or garbage, worth
		// a retry, unless the request itself could not be signed.
		perm := errors.Is(err, dns.ErrSecret) || errors.Is(err, dns.ErrKeyAlg) || errors.Is(err, dns.ErrAlg)
		return nil, c.fail(op, name, -1, 0, err, perm, nil)
	}
	tsigErr := 0
	if t := r.IsTsig(); t != nil {
		tsigErr = int(t.Error)
	}
	rcode := r.Rcode
	switch {
	case tsigErr != 0:
		return nil, c.fail(op, name, rcode, tsigErr, nil, true, nil)
	case rcode == dns.RcodeServerFailure:
		return nil, c.fail(op, name, rcode, 0, nil, false, nil)
	case rcode != dns.RcodeSuccess && !(op == "query" && rcode == dns.RcodeNameError):
		return nil, c.fail(op, name, rcode, 0, nil, true, nil)
	case err != nil:
		// A success whose signature does not verify: someone else's answer,
		// or a key that differs from the server's.
		return nil, c.fail(op, name, rcode, 0, err, true, nil)
	case signed && r.IsTsig() == nil:
		return nil, c.fail(op, name, rcode, 0, errors.New("the response is not signed"), true, nil)
	}
	return r, nil
}
