package dgram

import (
	"errors"
	"fmt"
	"net"

	"github.com/nearnet/nearnet/internal/nnerr"
)

var (
	// ErrTooLarge is matched (errors.Is) by every [*TooLargeError].
	ErrTooLarge = errors.New("nearnet: datagram too large")

	// ErrClosed is returned by operations on a closed flow or Mux. It wraps
	// net.ErrClosed.
	ErrClosed = fmt.Errorf("nearnet: datagram flow closed: %w", net.ErrClosed)

	// ErrExpired is returned by operations on a flow that was idle (nothing
	// sent or received) for longer than [Config.IdleTimeout] and was closed
	// for it. A new flow must be negotiated to send datagrams again.
	ErrExpired = errors.New("nearnet: datagram flow expired: idle for longer than the idle timeout")

	// ErrNoPeerAddress is returned by [Flow.Send] on a flow created without
	// a remote address before the first datagram from the peer arrived: the
	// peer's address is learned from that datagram.
	ErrNoPeerAddress = errors.New("nearnet: datagram peer address not known yet: it is learned from the peer's first datagram")

	// ErrSessionInUse is returned by [Mux.NewFlow] for a local session ID
	// that another open flow of the Mux already receives with.
	ErrSessionInUse = errors.New("nearnet: datagram session ID already in use on this socket")
)

// TooLargeError is returned by [Flow.Send] for a payload larger than the
// flow's maximum: it would need IP fragmentation, which nearnet never does.
// It matches [ErrTooLarge].
type TooLargeError struct {
	Size int // the payload's length
	Max  int // the largest payload the path takes now; see [Flow.MaxSize]
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("nearnet: datagram too large: %d bytes, the path takes at most %d without IP fragmentation", e.Size, e.Max)
}

// Is makes errors.Is(err, ErrTooLarge) hold.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// As lets errors.As find the public type of a TooLargeError (see package nnerr).
func (e *TooLargeError) As(target any) bool { return nnerr.As(e, target) }

// ConfigError reports an invalid [Config] field or argument.
type ConfigError = nnerr.ConfigError
