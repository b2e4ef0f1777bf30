package discovery

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with [errors.Is].
var (
	// ErrClosed is returned by calls on a [Responder], [Registration] or
	// [Browser] after Close.
	ErrClosed = errors.New("discovery: closed")

	// ErrNoInterfaces is returned when Config.Interfaces is empty and no
	// interface is up, multicast-capable, non-loopback and has an IPv4 or
	// IPv6 address. Name an interface explicitly (for example "lo") to use
	// it.
	ErrNoInterfaces = errors.New("discovery: no usable interface: none is up with the MULTICAST flag and an IPv4 or IPv6 address (name one in Config.Interfaces, e.g. \"lo\")")

	// ErrConflict is returned by [Responder.Register] when the name could not
	// be made unique after many renames (another responder keeps claiming
	// every name we try).
	ErrConflict = errors.New("discovery: name conflict could not be resolved")
)

// FieldError reports an invalid configuration or service field. Field names
// the field as "Type.Field" (for example "Service.Type" or
// "Config.Interfaces"), Value is the offending value and Reason says what is
// allowed.
type FieldError struct {
	Field  string
	Value  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("discovery: invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// TXTError reports a TXT attribute that cannot be encoded (RFC 6763 §6).
// Key is the attribute's key as given by the caller.
type TXTError struct {
	Key    string
	Reason string
}

func (e *TXTError) Error() string {
	return fmt.Sprintf("discovery: invalid TXT key %q: %s", e.Key, e.Reason)
}
