package quict

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
)

// Conn is one QUIC connection to a peer: a control stream ([Conn.Control]),
// further streams ([Conn.OpenStream], [Conn.AcceptStream]) and datagrams
// ([Conn.SendDatagram], [Conn.ReceiveDatagram]), all under one TLS 1.3
// handshake ([Conn.ConnectionState]). It is safe for concurrent use by
// multiple goroutines.
//
// Once the connection is closed, by either side or by an idle timeout,
// every blocked and later operation fails with the reason: a [*CloseError]
// for [Conn.CloseWithError] (from either side), a [*HandshakeError] for a
// TLS alert, quic-go's idle-timeout error (a net.Error whose Timeout is
// true) if the peer went silent. [Conn.Err] returns it.
type Conn struct {
	qc      *quic.Conn
	control *Stream
	ctx     context.Context
}

func newConn(qc *quic.Conn, control *quic.Stream) *Conn {
	c := &Conn{qc: qc}
	c.control = newStream(control, c)
	ctx, cancel := context.WithCancelCause(context.Background())
	context.AfterFunc(qc.Context(), func() { cancel(mapErr(context.Cause(qc.Context()))) })
	c.ctx = ctx
	return c
}

// Control returns the control stream: the first bidirectional stream,
// opened by the dialer and accepted by the listener. nearnet runs its
// message protocol on it. Closing it does not close the connection.
func (c *Conn) Control() *Stream { return c.control }

// ConnectionState returns the TLS state: the peer's certificate, the ALPN
// ("nearnet/1") and ExportKeyingMaterial for [security.Proof].
func (c *Conn) ConnectionState() tls.ConnectionState { return c.qc.ConnectionState().TLS }

// OpenStream opens a new stream. It blocks while the peer's limit of
// concurrent streams ([Config.MaxIncomingStreams]) is reached; ctx bounds
// that wait only. The peer's [Conn.AcceptStream] returns the stream when
// its first bytes (or its FIN) arrive.
func (c *Conn) OpenStream(ctx context.Context) (*Stream, error) {
	qs, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, c.opErr(err)
	}
	return newStream(qs, c), nil
}

// AcceptStream returns the next stream the peer opened (not the control
// stream). ctx bounds the wait.
func (c *Conn) AcceptStream(ctx context.Context) (*Stream, error) {
	qs, err := c.qc.AcceptStream(ctx)
	if err != nil {
		return nil, c.opErr(err)
	}
	return newStream(qs, c), nil
}

// SendDatagram sends p in one QUIC DATAGRAM frame (RFC 9221): unreliable,
// unordered, never split, encrypted like the streams. It returns a
// [*DatagramTooLargeError] for a p longer than [Conn.MaxDatagramSize]. It
// may block briefly while the send queue is full; a datagram can still be
// lost on the way.
func (c *Conn) SendDatagram(p []byte) error {
	if err := c.qc.SendDatagram(p); err != nil {
		return c.datagramErr(err, len(p))
	}
	return nil
}

// ReceiveDatagram returns the next datagram from the peer. ctx bounds the
// wait. Datagrams that arrive while the receive queue is full are dropped.
func (c *Conn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	p, err := c.qc.ReceiveDatagram(ctx)
	if err != nil {
		return nil, c.opErr(err)
	}
	return p, nil
}

// oversize is longer than any DATAGRAM frame, for MaxDatagramSize to ask
// quic-go for its limit. It is never written to nor copied.
var oversize = make([]byte, 1<<16)

// MaxDatagramSize returns the largest payload [Conn.SendDatagram] takes
// now: what fits in one QUIC packet on the path (it grows as path MTU
// discovery finds a larger MTU) and in the peer's limit. It is 0 if the
// peer does not accept datagrams or the connection is closed.
func (c *Conn) MaxDatagramSize() int {
	if c.qc.Context().Err() != nil {
		return 0
	}
	// quic-go checks the size before it copies or queues anything.
	var tl *quic.DatagramTooLargeError
	if errors.As(c.qc.SendDatagram(oversize), &tl) {
		return int(tl.MaxDatagramPayloadSize)
	}
	return 0
}

func (c *Conn) datagramErr(err error, size int) error {
	var tl *quic.DatagramTooLargeError
	if errors.As(err, &tl) {
		return &DatagramTooLargeError{Size: size, Max: int(tl.MaxDatagramPayloadSize)}
	}
	if c.ctx.Err() == nil && !c.qc.ConnectionState().SupportsDatagrams.Remote {
		return ErrDatagramsUnsupported
	}
	return c.opErr(err)
}

// opErr maps err, preferring the connection's close reason once it is
// closed.
func (c *Conn) opErr(err error) error {
	if ce := c.Err(); ce != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return ce
	}
	return mapErr(err)
}

// CloseWithError closes the connection with a close code and a reason
// (UTF-8, cut to 123 bytes) that the peer sees as a [*CloseError] with
// Remote set; this side's operations return one with Remote unset. nearnet
// uses the WebSocket close codes (1000 normal, 4001 to 4005: PROTOCOL.md).
// Data still in flight may be lost: to deliver everything, let the peer
// confirm it (for example with a message on the control stream) first.
// The code must be at most 2^62-1.
func (c *Conn) CloseWithError(code uint64, reason string) error {
	if code > quicvarint.Max {
		return &ConfigError{Field: "code", Value: code, Reason: "a QUIC application error code is at most 2^62-1"}
	}
	if len(reason) > maxReason {
		reason = reason[:maxReason]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	c.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
	return nil
}

// Close closes the connection with [CodeNormal] and no reason.
func (c *Conn) Close() error { return c.CloseWithError(CodeNormal, "") }

// RTT is QUIC's smoothed round-trip time of the connection.
func (c *Conn) RTT() time.Duration { return c.qc.ConnectionStats().SmoothedRTT }

// Context returns a context that is cancelled when the connection closes;
// its cause (context.Cause) is [Conn.Err].
func (c *Conn) Context() context.Context { return c.ctx }

// Done returns a channel that is closed when the connection closes.
func (c *Conn) Done() <-chan struct{} { return c.ctx.Done() }

// Err returns why the connection closed (see [Conn]), or nil while it is
// open.
func (c *Conn) Err() error {
	if c.ctx.Err() == nil {
		if err := context.Cause(c.qc.Context()); err != nil {
			return mapErr(err) // closed; c.ctx's callback may not have run yet
		}
		return nil
	}
	return context.Cause(c.ctx)
}

// LocalAddr returns the local UDP address.
func (c *Conn) LocalAddr() net.Addr { return c.qc.LocalAddr() }

// RemoteAddr returns the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }
