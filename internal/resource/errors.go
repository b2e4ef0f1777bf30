package resource

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/nearnet/nearnet/internal/nnerr"
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

	// ErrIdleTimeout means the receiver got no byte from the sender for
	// [AcceptOptions.IdleTimeout] and dropped the transfer, keeping what
	// arrived for a resume. The receiver sees it in a [*DroppedError], the
	// sender in a [*ReceiverError] (code "idle_timeout").
	ErrIdleTimeout = errors.New("nearnet: resource transfer dropped: no bytes from the sender within the idle deadline")

	// ErrDiskFull means the receiver's file system has no room for the
	// resource: refused at the offer (a [*RejectedError] whose reason
	// gives the free space) or met while writing (a [*ReceiverError] for
	// the sender, a [*DroppedError] for the receiver). Code "disk_full".
	ErrDiskFull = errors.New("nearnet: the receiver's disk is full")
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

// As lets errors.As find the public type of a NameError (see package nnerr).
func (e *NameError) As(target any) bool { return nnerr.As(e, target) }

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

// Is makes errors.Is(err, ErrExists), errors.Is(err, ErrInProgress) and
// errors.Is(err, ErrDiskFull) true for a rejection with the matching code.
func (e *RejectedError) Is(target error) bool { return codeIs(e.Code, target) }

// As lets errors.As find the public type of a RejectedError (see package nnerr).
func (e *RejectedError) As(target any) bool { return nnerr.As(e, target) }

// ReceiverError is returned by [Send] when the receiver accepted the offer
// but failed to finish: the content did not verify (errors.Is(err,
// [ErrHashMismatch])), the name appeared meanwhile ([ErrExists]), its disk
// filled up ([ErrDiskFull]), the sender was idle for longer than the
// receiver waits ([ErrIdleTimeout]), or it could not write or rename the
// file (code "io", Message naming the file system's error). The receiver
// may say so before all the content is sent; Send then stops sending.
type ReceiverError struct {
	Code    string // see the package documentation
	Message string
}

func (e *ReceiverError) Error() string {
	return "nearnet: resource receiver failed: " + e.Message
}

// Is makes errors.Is match ErrHashMismatch, ErrExists, ErrInProgress,
// ErrDiskFull and ErrIdleTimeout by code.
func (e *ReceiverError) Is(target error) bool { return codeIs(e.Code, target) }

// As lets errors.As find the public type of a ReceiverError (see package nnerr).
func (e *ReceiverError) As(target any) bool { return nnerr.As(e, target) }

// DroppedError is returned by [Incoming.Accept] when the receiver ended
// an accepted transfer itself before the content was complete: no byte
// came for [AcceptOptions.IdleTimeout] (errors.Is(err, [ErrIdleTimeout]),
// and Timeout reports true), the disk filled up ([ErrDiskFull]), or the
// file could not be written (code "io"). The sender was told Reason, and
// the name is free for another transfer.
//
// What arrived is kept in the partial file at Partial for a resume
// (Kept bytes), unless Partial is "" (nothing was kept: the bounds of
// [AcceptOptions] left no room for it, or the file could not be created).
type DroppedError struct {
	Code    string // "idle_timeout", "disk_full" or "io"
	Reason  string // what the sender was told
	Partial string // the partial file kept for a resume; "" if none
	Kept    int64  // the bytes in Partial
	Err     error  // the cause: the file system's error, or nil for an idle sender
}

func (e *DroppedError) Error() string {
	s := "nearnet: resource transfer dropped: " + e.Reason
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	if e.Partial != "" {
		s += fmt.Sprintf("; %d bytes kept in %s for a resume", e.Kept, e.Partial)
	}
	return s
}

func (e *DroppedError) Unwrap() error { return e.Err }

// Is makes errors.Is match ErrIdleTimeout and ErrDiskFull by code.
func (e *DroppedError) Is(target error) bool { return codeIs(e.Code, target) }

// As lets errors.As find the public type of a DroppedError (see package nnerr).
func (e *DroppedError) As(target any) bool { return nnerr.As(e, target) }

// Timeout reports whether the sender was idle, so that a DroppedError is
// a net.Error like other timeouts.
func (e *DroppedError) Timeout() bool { return e.Code == codeIdle }

// Temporary is false: see net.Error.
func (e *DroppedError) Temporary() bool { return false }

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
	codeIdle         = "idle_timeout"
	codeDiskFull     = "disk_full"
)

// CodeIs reports whether a rejection or result with code matches the
// sentinel target, as the Is methods of this package's errors do; the
// root package's error types use it for theirs.
func CodeIs(code string, target error) bool { return codeIs(code, target) }

func codeIs(code string, target error) bool {
	switch code {
	case codeExists:
		return target == ErrExists
	case codeInProgress:
		return target == ErrInProgress
	case codeHashMismatch:
		return target == ErrHashMismatch
	case codeIdle:
		return target == ErrIdleTimeout
	case codeDiskFull:
		return target == ErrDiskFull
	}
	return false
}

// diskFull reports whether err says the file system (or the user's quota
// on it) has no room left.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// ioReason says, for the sender, why the receiver could not do what: the
// code "disk_full" or "io" and a reason that names the file system's
// fault ("read-only file system", "permission denied") but no local path.
func ioReason(what string, err error) (code, reason string) {
	if diskFull(err) {
		return codeDiskFull, "the receiver's disk is full"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return codeIO, what + ": " + errno.Error()
	}
	return codeIO, what
}
