package resource

import (
	"errors"
	"fmt"
)

var (
	// ErrHashMismatch means the received content does not hash to the
	// SHA-256 the sender computed: it was corrupted on the way. Both sides
	// see it (the sender inside a [*ReceiverError]); the receiver has
	// deleted its partial file, so sending again starts from zero.
	ErrHashMismatch = errors.New("nearnet: resource corrupted in transit: SHA-256 mismatch; send it again")

	// ErrExists means a file or directory of the offered name is already in
	// the target directory and [AcceptOptions] asked neither to overwrite
	// nor to rename. Nothing was written. The sender sees it inside a
	// [*RejectedError] or [*ReceiverError].
	ErrExists = errors.New("nearnet: resource name already exists in the target directory")

	// ErrInProgress means another transfer in this process is receiving
	// the same resource (same partial file) into the same directory.
	ErrInProgress = errors.New("nearnet: the same resource is already being received into this directory")

	// ErrShortSource means the sender's source ended before Offer.Size
	// bytes. The receiver keeps what it got as a partial file.
	ErrShortSource = errors.New("nearnet: resource source ended before Offer.Size bytes")
)

// NameError reports a resource name that is unsafe to use as a relative
// path: see [SafeName] for the rules.
type NameError struct {
	Name   string // the name as offered (may hold control characters: print with %q)
	Reason string // what is wrong, e.g. `component ".." leaves the directory`
}

func (e *NameError) Error() string {
	return fmt.Sprintf("nearnet: unsafe resource name %q: %s", e.Name, e.Reason)
}

// RejectedError is returned by [Send] when the receiver declined the
// offer, by choice ([Incoming.Reject]) or because it could not take it
// (unsafe name, name exists, unwritable directory). Reason is the
// receiver's text. Code is a machine-readable cause where the receiver
// gave one (see the codes in the package documentation); errors.Is
// matches ErrExists and ErrInProgress by it.
type RejectedError struct {
	Code   string
	Reason string
}

func (e *RejectedError) Error() string {
	return "nearnet: resource rejected by receiver: " + e.Reason
}

// Is makes errors.Is(err, ErrExists) and errors.Is(err, ErrInProgress)
// true for a rejection with the matching code.
func (e *RejectedError) Is(target error) bool { return codeIs(e.Code, target) }

// ReceiverError is returned by [Send] when the receiver got all the bytes
// but failed to finish: the content did not verify (errors.Is(err,
// [ErrHashMismatch])), the name appeared meanwhile ([ErrExists]), or it
// could not write or rename the file.
type ReceiverError struct {
	Code    string // see the package documentation
	Message string
}

func (e *ReceiverError) Error() string {
	return "nearnet: resource receiver failed: " + e.Message
}

// Is makes errors.Is match ErrHashMismatch, ErrExists and ErrInProgress
// by code.
func (e *ReceiverError) Is(target error) bool { return codeIs(e.Code, target) }

// ProtocolError reports bytes from the peer that do not follow the
// resource protocol. The stream is unusable afterwards.
type ProtocolError struct {
	What string
	code string // the code a receiver rejects with; "" means codeProtocol
}

func (e *ProtocolError) Error() string { return "nearnet: resource protocol error: " + e.What }

func protoErr(format string, args ...any) error {
	return &ProtocolError{What: fmt.Sprintf(format, args...)}
}

// Codes carried in reject and result messages.
const (
	codeDeclined     = "declined"
	codeExists       = "exists"
	codeInProgress   = "in_progress"
	codeUnsafeName   = "unsafe_name"
	codeHashMismatch = "hash_mismatch"
	codeVersion      = "version"
	codeProtocol     = "protocol"
	codeIO           = "io"
)

func codeIs(code string, target error) bool {
	switch code {
	case codeExists:
		return target == ErrExists
	case codeInProgress:
		return target == ErrInProgress
	case codeHashMismatch:
		return target == ErrHashMismatch
	}
	return false
}
