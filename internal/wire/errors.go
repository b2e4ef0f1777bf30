package wire

import (
	"errors"
	"fmt"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// ErrMessageTooLarge reports a WebSocket message whose payload exceeds the
// configured maximum. The connection is closed with status 1009.
var ErrMessageTooLarge = errors.New("nearnet: message too large")

// ProtocolError reports bytes from the peer that break RFC 6455 or
// PROTOCOL.md. The connection is closed with status 1002 (or Code, if set).
type ProtocolError struct {
	What string // what was wrong, in a few words
}

func (e *ProtocolError) Error() string { return "nearnet: protocol error: " + e.What }

// As lets errors.As find the public type of a ProtocolError (see package nnerr).
func (e *ProtocolError) As(target any) bool { return nnerr.As(e, target) }

func protoErr(format string, args ...any) error {
	return &ProtocolError{What: fmt.Sprintf(format, args...)}
}
