package nearnet

import (
	"errors"
	"fmt"
	"net"

	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

var (
	// ErrMessageTooLarge is returned by SendMessage for a message over
	// Config.MaxMessageSize, and wrapped by the error a connection fails
	// with when the peer sends one.
	ErrMessageTooLarge = wire.ErrMessageTooLarge

	// ErrKeyMismatch means the two peers hold different pre-shared keys.
	// Both sides see it.
	ErrKeyMismatch = security.ErrKeyMismatch

	// ErrClosed is returned for operations on a closed connection or node.
	// It wraps net.ErrClosed.
	ErrClosed = fmt.Errorf("nearnet: closed: %w", net.ErrClosed)
)

// ConfigError reports an invalid Config field: Field names it (e.g.
// "Config.MaxMessageSize"), Value is what was given, Reason what is allowed.
type ConfigError = nnerr.ConfigError

// RejectedError is returned to a dialer whose peer refused it: the
// listener's admission hook said no (Reason is what it said), or the peer
// does not trust this node.
type RejectedError struct {
	Code   int // the WebSocket close code; see PROTOCOL.md
	Reason string
}

func (e *RejectedError) Error() string {
	return "nearnet: rejected by peer: " + e.Reason
}

// CloseError reports how the peer closed a connection: the WebSocket close
// code and reason it sent. A CloseError with code 1000 is a normal close.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("nearnet: peer closed the connection (%d)", e.Code)
	}
	return fmt.Sprintf("nearnet: peer closed the connection (%d %s)", e.Code, e.Reason)
}

// Unwrap maps well-known codes to this package's sentinels, so that
// errors.Is(err, ErrMessageTooLarge) holds for a 1009 close.
func (e *CloseError) Unwrap() error {
	switch e.Code {
	case wire.CloseMessageTooBig:
		return ErrMessageTooLarge
	case wire.CloseKeyMismatch:
		return ErrKeyMismatch
	}
	return nil
}

// closeErrorFor turns a received close code into the error the application sees.
func closeErrorFor(code int, reason string) error {
	switch code {
	case wire.CloseKeyMismatch:
		return ErrKeyMismatch
	case wire.CloseRejected, wire.CloseUntrusted, wire.CloseBadHello:
		return &RejectedError{Code: code, Reason: reason}
	}
	return &CloseError{Code: code, Reason: reason}
}

// fromTransport maps the peer's close as a transport reports it (QUIC's
// CONNECTION_CLOSE with a nearnet code) to the error a close frame with
// that code gives.
func fromTransport(err error) error {
	if ce, ok := errorsAs[*transport.CloseError](err); ok {
		return closeErrorFor(ce.Code, ce.Reason)
	}
	return err
}

// ProtocolError reports bytes from the peer that break the protocol. The
// connection is closed; nothing else is affected.
type ProtocolError = wire.ProtocolError

// errorsAs is errors.As, kept short for the many checks below.
func errorsAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
