package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// connectSOCKS runs the SOCKS5 negotiation for target on c with
// golang.org/x/net/proxy.
//
// That library's errors are plain strings ("username/password
// authentication failed", "unknown error connection refused"), so rather
// than match their text we keep the bytes the proxy sent, which it reads
// exactly as RFC 1928 lays them out, and read the failure from them: the
// method the proxy chose, the RFC 1929 status, the reply code.
func (d *Dialer) connectSOCKS(ctx context.Context, c net.Conn, target string) (net.Conn, *Error) {
	tap := &socksTap{Conn: c, created: time.Now()}
	if _, err := d.socks.DialWithConn(ctx, tap, "tcp", target); err != nil {
		return nil, d.classifySOCKS(tap, err, target)
	}
	return c, nil
}

// socksTap records what the proxy sends during the negotiation, and when
// each of our messages was sent: greeting, authentication if the proxy
// chose it, request. Only the negotiating goroutine reads and writes it.
type socksTap struct {
	net.Conn
	got     []byte
	created time.Time
	writes  []time.Time
}

func (t *socksTap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.got = append(t.got, p[:n]...)
	return n, err
}

func (t *socksTap) Write(p []byte) (int, error) {
	t.writes = append(t.writes, time.Now())
	return t.Conn.Write(p)
}

// sent is when our k-th message was sent (from 0), for the time a phase
// waited.
func (t *socksTap) sent(k int) time.Time {
	if k < len(t.writes) {
		return t.writes[k]
	}
	return t.created
}

const (
	socksMethodNone     = 0x00
	socksMethodPassword = 0x02
	socksMethodRefused  = 0xff
)

// socksReplies are RFC 1928 section 6's reply codes.
var socksReplies = [...]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// classifySOCKS reads the failure of a negotiation from what the proxy sent.
func (d *Dialer) classifySOCKS(t *socksTap, err error, target string) *Error {
	got := t.got
	ioFail := func(phase Phase, start time.Time) *Error {
		cause := err
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			cause = fmt.Errorf("it closed the connection without answering (%w)", err)
		}
		e := d.fail(ProtocolError, phase, target, 0, cause)
		e.io, e.start = true, start
		return e
	}
	protocol := func(phase Phase, format string, args ...any) *Error {
		return d.fail(ProtocolError, phase, target, 0, fmt.Errorf(format, args...))
	}
	if len(got) < 2 {
		return ioFail(PhaseSOCKSGreeting, t.sent(0))
	}
	if got[0] != 5 {
		return protocol(PhaseSOCKSGreeting, "version %d in its method selection, not 5", got[0])
	}
	off := 2
	switch got[1] {
	case socksMethodRefused:
		if d.creds {
			return d.fail(AuthFailed, PhaseSOCKSGreeting, target, 0, err)
		}
		return d.fail(AuthRequired, PhaseSOCKSGreeting, target, 0, err)
	case socksMethodNone:
	case socksMethodPassword:
		if !d.creds {
			return protocol(PhaseSOCKSGreeting, "it chose username/password authentication, which was not offered")
		}
		if len(got) < 4 {
			return ioFail(PhaseSOCKSAuth, t.sent(1))
		}
		if got[3] != 0 {
			return d.fail(AuthFailed, PhaseSOCKSAuth, target, 0, fmt.Errorf("RFC 1929 status %d", got[3]))
		}
		off = 4
	default:
		return protocol(PhaseSOCKSGreeting, "it chose authentication method %d, which was not offered", got[1])
	}
	if len(got) < off+2 {
		return ioFail(PhaseSOCKSConnect, t.sent(off/2))
	}
	if got[off] != 5 {
		return protocol(PhaseSOCKSConnect, "version %d in its reply, not 5", got[off])
	}
	if rep := int(got[off+1]); rep != 0 {
		text := fmt.Sprintf("unknown reply code %d", rep)
		if rep < len(socksReplies) {
			text = socksReplies[rep]
		}
		return d.fail(TargetRefused, PhaseSOCKSConnect, target, rep, fmt.Errorf("SOCKS5 reply %d: %s", rep, text))
	}
	// Success, then something wrong in the rest of the reply.
	return protocol(PhaseSOCKSConnect, "%v", err)
}
