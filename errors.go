package nearnet

import (
	"errors"
	"fmt"
	"net"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/resource"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/ice"
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

	errNoTransport = errors.New("nearnet: the peer offers no transport this node dials")
)

// ConfigError reports an invalid Config field, or an invalid field of
// another options struct ([AcceptOptions]): Field names it (e.g.
// "Config.MaxMessageSize"), Value is what was given, Reason what is
// allowed.
type ConfigError struct {
	Field  string // e.g. "Config.MaxMessageSize" or "AcceptOptions.MaxPartials"
	Value  any    // the value given (never a key's secret)
	Reason string // what is allowed, or what the field contradicts
}

func (e *ConfigError) Error() string {
	return (*nnerr.ConfigError)(e).Error()
}

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
	case wire.ClosePairingFailed:
		return pairingClosed(reason)
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

// ProtocolError reports bytes from the peer that break the protocol
// (RFC 6455 framing or PROTOCOL.md). The connection is closed with status
// 1002; nothing else is affected.
type ProtocolError struct {
	What string // what was wrong, in a few words
}

func (e *ProtocolError) Error() string { return "nearnet: protocol error: " + e.What }

// The internal packages have error types of their own, and the public API
// re-exports none of them: an alias would show in go doc without fields or
// documentation. Instead every error type a caller may look for is defined
// in this package, with the same fields as its internal counterpart, and
// publicError, installed as package nnerr's hook, converts one to the
// other. Each internal type's As method calls that hook, so
// errors.As(err, &pub) finds the public type wherever the internal error
// sits in err's chain, and errors.Is matches the same sentinels as
// before: nothing has to convert errors at each return. Where one
// function hands back an internal error as it is (SendResource, Accept),
// exported converts it at the top too, so that its %T is the public type.
func init() { nnerr.Public = publicError }

// publicError returns the public error that the internal error err stands
// for, or nil. The conversions are pointer conversions, which stop
// compiling if a public type's fields drift from its counterpart's (the
// two share the error's memory: errors are not changed once made).
func publicError(err error) error {
	switch e := err.(type) {
	case *nnerr.ConfigError:
		return (*ConfigError)(e)
	case *wire.ProtocolError:
		return (*ProtocolError)(e)
	case *dgram.TooLargeError:
		return (*DatagramTooLargeError)(e)
	case *resource.NameError:
		return (*ResourceNameError)(e)
	case *resource.RejectedError:
		return (*ResourceRejectedError)(e)
	case *resource.ReceiverError:
		return (*ResourceReceiverError)(e)
	case *resource.DroppedError:
		return (*ResourceDroppedError)(e)
	case *ice.ServerError:
		return (*ICEServerError)(e)
	}
	return nil
}

// exported returns err, or its public counterpart if err itself is an
// internal error (see publicError).
func exported(err error) error {
	if p := publicError(err); p != nil {
		return p
	}
	return err
}

// errorsAs is errors.As, kept short for the many checks below.
func errorsAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
