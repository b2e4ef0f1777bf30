package ice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	pice "github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	ptransport "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/turn/v5"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// ServerError reports a STUN or TURN server that failed: one that did not
// answer ([ErrNoAnswer]), a TURN server that refused the credentials
// ([ErrUnauthorized]), a turns: server whose TLS handshake failed (Err
// wraps the crypto/tls or crypto/x509 error), or another refusal. URL is
// the server's URL, never its credentials. The root's ICEServerError has
// the same fields.
type ServerError struct {
	URL string
	Err error
}

func (e *ServerError) Error() string { return "nearnet: ICE server " + e.URL + ": " + e.Err.Error() }
func (e *ServerError) Unwrap() error { return e.Err }

// As lets errors.As find the public type of a ServerError (see package nnerr).
func (e *ServerError) As(target any) bool { return nnerr.As(e, target) }

// ErrUnauthorized is wrapped by the ServerError of a TURN server that
// answered 401 Unauthorized to credentials: the username or password is
// wrong (or, for time-limited credentials, expired).
var ErrUnauthorized = errors.New("TURN server refused the credentials (401 Unauthorized): check the username and password")

// ErrNoAnswer is wrapped by the ServerError of a server that did not
// answer in time (nothing listens there, or a firewall drops the
// packets). It is a net.Error whose Timeout is true.
var ErrNoAnswer error = noAnswer{}

type noAnswer struct{}

func (noAnswer) Error() string {
	return "no answer (nothing listens there, or a firewall drops the packets)"
}
func (noAnswer) Timeout() bool   { return true }
func (noAnswer) Temporary() bool { return true }

// ProbeTimeout is how long Probe waits for one server by default.
const ProbeTimeout = 3 * time.Second

// Result is what a probe found out about one server.
type Result struct {
	URL     string         // the server's URL (no credentials)
	TURN    bool           // a TURN server (turn:, turns:); else STUN
	Via     string         // how it was reached: "udp", "tcp" or "tls"
	Mapped  netip.AddrPort // this side's address as the server saw it
	Relayed netip.AddrPort // TURN: the relayed address of the allocation made (and released)
	RTT     time.Duration  // of the first answer
	Err     error          // a *ServerError, nil if the server did its job
}

// Probe asks each server of cfg, in parallel, what ICE needs of it: a
// STUN server a binding (the mapped address), a TURN server a binding
// and an allocation with the credentials (released at once). Each waits
// at most timeout (ProbeTimeout if zero) or until ctx ends.
func Probe(ctx context.Context, cfg Config, timeout time.Duration) ([]Result, error) {
	urls, err := cfg.urls()
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = ProbeTimeout
	}
	n := cfg.Net
	if n == nil {
		if n, err = stdnet.NewNet(); err != nil {
			return nil, err
		}
	}
	out := make([]Result, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			out[i] = probe(pctx, n, cfg, cfg.Servers[i].URL, u)
		}()
	}
	wg.Wait()
	return out, nil
}

func probe(ctx context.Context, n ptransport.Net, cfg Config, raw string, u *stun.URI) Result {
	r := Result{URL: raw, TURN: u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS, Via: "udp"}
	fail := func(err error) Result {
		if ctx.Err() != nil && !errors.Is(err, ErrUnauthorized) {
			err = ErrNoAnswer
		}
		r.Err = &ServerError{URL: raw, Err: err}
		return r
	}
	addr := net.JoinHostPort(u.Host, fmt.Sprint(u.Port))
	var conn net.PacketConn
	secure := u.Scheme == stun.SchemeTypeTURNS || u.Scheme == stun.SchemeTypeSTUNS
	if u.Proto == stun.ProtoTypeTCP || secure {
		r.Via = "tcp"
		d := n.CreateDialer(&net.Dialer{Deadline: deadline(ctx)})
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			return fail(err)
		}
		if secure {
			r.Via = "tls"
			tc := tls.Client(c, &tls.Config{ServerName: u.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12})
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				if ctx.Err() != nil {
					return fail(err)
				}
				r.Err = &ServerError{URL: raw, Err: fmt.Errorf("TLS handshake: %w", err)}
				return r
			}
			c = tc
		}
		conn = turn.NewSTUNConn(c)
	} else {
		var err error
		if conn, err = n.ListenPacket("udp4", "0.0.0.0:0"); err != nil {
			return fail(err)
		}
	}
	defer conn.Close()
	cc := &turn.ClientConfig{STUNServerAddr: addr, Conn: conn, Net: n, LoggerFactory: slogFactory{cfg.logger()}}
	if r.TURN {
		cc.TURNServerAddr, cc.Username, cc.Password = addr, u.Username, u.Password
	}
	c, err := turn.NewClient(cc)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		return fail(err)
	}
	// The binding has no context: closing the client ends its
	// transaction when ctx ends first.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	start := time.Now()
	mapped, err := c.SendBindingRequest()
	if err != nil {
		return fail(err)
	}
	r.RTT = time.Since(start)
	if ua, ok := mapped.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		r.Mapped = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if !r.TURN {
		return r
	}
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		var te *stun.TurnError
		if errors.As(err, &te) && te.ErrorCodeAttr.Code == stun.CodeUnauthorized {
			return fail(ErrUnauthorized)
		}
		if errors.As(err, &te) {
			return fail(fmt.Errorf("allocation refused: %d %s", te.ErrorCodeAttr.Code, strings.TrimSpace(string(te.ErrorCodeAttr.Reason))))
		}
		return fail(fmt.Errorf("allocation: %w", err))
	}
	if ua, ok := relay.LocalAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		r.Relayed = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	relay.Close()
	return r
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// Candidate is a gathered candidate as a person reads it.
type Candidate struct {
	Type    string         // "host", "srflx", "prflx" or "relay"
	Addr    netip.AddrPort // where the peer sends to
	Network string         // "udp" or "tcp"
}

// ParseCandidate reads a candidate of a Description.
func ParseCandidate(s string) (Candidate, error) {
	c, err := pice.UnmarshalCandidate(s)
	if err != nil {
		return Candidate{}, &DescriptionError{What: fmt.Sprintf("candidate %q: %v", s, err)}
	}
	a, err := netip.ParseAddr(c.Address())
	if err != nil {
		return Candidate{}, &DescriptionError{What: fmt.Sprintf("candidate %q: address: %v", s, err)}
	}
	return Candidate{Type: c.Type().String(), Addr: netip.AddrPortFrom(a.Unmap(), uint16(c.Port())), Network: c.NetworkType().NetworkShort()}, nil
}
