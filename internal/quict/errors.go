package quict

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/quic-go/quic-go"
)

// Close codes this package sends itself. A connection's code is a QUIC
// application error code (RFC 9000, section 20.2); nearnet uses the
// WebSocket close codes there (1000, 4001 to 4005: PROTOCOL.md), so that
// both transports report a close the same way.
const (
	CodeNormal        = 1000 // a normal close
	CodeGoingAway     = 1001 // the listener or transport was closed
	CodeProtocolError = 1002 // the dialer opened no control stream in time
)

// StreamCodeClosed is the stream error code of the STOP_SENDING a
// [Stream.Close] sends when the peer may still be writing: the peer's Write
// then fails with a [*StreamError] with this code instead of blocking.
const StreamCodeClosed = 0

// maxReason is the longest close reason sent; longer ones are cut (at a
// UTF-8 boundary) as a WebSocket close frame's would be.
const maxReason = 123

// CloseError reports a connection closed by [Conn.CloseWithError], by this
// side (Remote false) or by the peer (Remote true), with the code and reason
// given there. It matches net.ErrClosed.
type CloseError struct {
	Code   uint64
	Reason string
	Remote bool
}

func (e *CloseError) Error() string {
	who := "peer"
	if !e.Remote {
		who = "local side"
	}
	if e.Reason == "" {
		return fmt.Sprintf("quict: connection closed by the %s (%d)", who, e.Code)
	}
	return fmt.Sprintf("quict: connection closed by the %s (%d %s)", who, e.Code, e.Reason)
}

// Unwrap makes errors.Is(err, net.ErrClosed) hold.
func (e *CloseError) Unwrap() error { return net.ErrClosed }

// HandshakeError reports a failed TLS handshake: a certificate the verify
// function refused, an ALPN mismatch (alert 120, no_application_protocol),
// no TLS 1.3. Remote says whether the peer sent the alert (it refused this
// side) or this side did. A dialer whose certificate the listener refuses
// sees it from its first stream operation rather than from Dial: in TLS 1.3
// the client's handshake completes before the server has checked it.
type HandshakeError struct {
	Alert  tls.AlertError // the TLS alert
	Remote bool
	Reason string // this side's reason for a local failure (the peer sends none)
	Err    error  // what quic-go reported; it wraps a local failure's cause
}

func (e *HandshakeError) Error() string {
	if e.Remote {
		return fmt.Sprintf("quict: TLS handshake refused by the peer: %v", e.Alert)
	}
	if e.Reason == "" {
		return fmt.Sprintf("quict: TLS handshake failed: %v", e.Alert)
	}
	return fmt.Sprintf("quict: TLS handshake failed: %v: %s", e.Alert, e.Reason)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// ErrDatagramTooLarge is matched (errors.Is) by every [*DatagramTooLargeError].
var ErrDatagramTooLarge = errors.New("quict: datagram too large")

// DatagramTooLargeError is returned by [Conn.SendDatagram] for a payload
// that does not fit in one QUIC packet on the path now. Datagrams are never
// split.
type DatagramTooLargeError struct {
	Size int // the payload's length
	Max  int // the largest payload that fits now; see [Conn.MaxDatagramSize]
}

func (e *DatagramTooLargeError) Error() string {
	return fmt.Sprintf("quict: datagram too large: %d bytes, a QUIC packet on this path takes at most %d", e.Size, e.Max)
}

// Is makes errors.Is(err, ErrDatagramTooLarge) hold.
func (e *DatagramTooLargeError) Is(target error) bool { return target == ErrDatagramTooLarge }

// ErrDatagramsUnsupported is returned by the datagram methods of a [Conn]
// whose peer did not enable QUIC datagrams (RFC 9221).
var ErrDatagramsUnsupported = errors.New("quict: the peer does not accept QUIC datagrams")

// StreamError reports a stream that one side abandoned: the peer stopped
// reading it (STOP_SENDING, seen by Write) or reset it (RESET_STREAM, seen
// by Read), or this side did (Remote false). See [StreamCodeClosed].
type StreamError struct {
	Code   uint64
	Remote bool
}

func (e *StreamError) Error() string {
	if e.Remote {
		return fmt.Sprintf("quict: stream abandoned by the peer (code %d)", e.Code)
	}
	return fmt.Sprintf("quict: stream abandoned by this side (code %d)", e.Code)
}

// mapErr turns quic-go's errors into this package's: an application close
// into a *CloseError, a TLS alert into a *HandshakeError, a stream
// cancellation into a *StreamError. Other errors (an idle timeout: a
// net.Error whose Timeout is true; a deadline) are returned as they are.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return &CloseError{Code: uint64(ae.ErrorCode), Reason: ae.ErrorMessage, Remote: ae.Remote}
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		return &HandshakeError{Alert: tls.AlertError(te.ErrorCode - 0x100), Remote: te.Remote, Reason: te.ErrorMessage, Err: err}
	}
	var se *quic.StreamError
	if errors.As(err, &se) {
		return &StreamError{Code: uint64(se.ErrorCode), Remote: se.Remote}
	}
	var tl *quic.DatagramTooLargeError
	if errors.As(err, &tl) {
		return &DatagramTooLargeError{Max: int(tl.MaxDatagramPayloadSize)}
	}
	return err
}
