package security

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrKeyMismatch is returned by [VerifyProof] when the peer's proof was made
// with a different pre-shared key (or for a different TLS session or role).
var ErrKeyMismatch = errors.New("pre-shared key mismatch: the peer proved a different key")

// ErrNoProof is returned by [VerifyProof] when the peer sent no proof at
// all: it runs without a pre-shared key (another security mode, or a
// client that does not implement the proof). errors.Is(ErrNoProof,
// ErrKeyMismatch) holds.
var ErrNoProof error = noProofError{}

type noProofError struct{}

func (noProofError) Error() string {
	return "pre-shared key mismatch: no proof was sent (does the peer run with a pre-shared key?)"
}

func (noProofError) Is(target error) bool { return target == ErrKeyMismatch }

// ParseError reports text that is not a valid fingerprint, pre-shared key,
// known-peers entry or identity file.
type ParseError struct {
	What   string // "fingerprint", "pre-shared key", "known-peers entry" or "identity file"
	Path   string // file the text came from; empty if it did not come from a file
	Line   int    // 1-based line within Path; 0 if unknown
	Input  string // the offending text, shortened; always empty for key material
	Reason string // what was expected
}

func (e *ParseError) Error() string {
	var s string
	if e.Path != "" {
		s = e.Path + ": "
		if e.Line > 0 {
			s = e.Path + ":" + strconv.Itoa(e.Line) + ": "
		}
	}
	s += "invalid " + e.What
	if e.Input != "" {
		s += " " + strconv.Quote(e.Input)
	}
	return s + ": " + e.Reason
}

// shorten keeps error messages readable when the input is long or binary.
func shorten(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// UntrustedPeerError is returned by the verifiers (and so by the TLS
// handshake) when the peer's certificate is not trusted.
type UntrustedPeerError struct {
	// Fingerprint identifies the certificate the peer presented.
	Fingerprint Fingerprint
	// Err is why a certificate chain was rejected by [RootsVerifier]; nil
	// when the fingerprint was simply not in the trusted set.
	Err error
}

func (e *UntrustedPeerError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("peer presented %s: certificate not issued by a trusted root: %v", e.Fingerprint, e.Err)
	}
	return fmt.Sprintf("peer presented %s; not in the trusted set: add it with --trust or to the known-peers file", e.Fingerprint)
}

func (e *UntrustedPeerError) Unwrap() error { return e.Err }

// ErrPairingCodeMismatch is returned by [Pairing.Confirm] when the peer
// proved a different pairing code: it was mistyped, or the peer is not the
// one showing the code, or the two ends are not on the same TLS session (a
// relay). Both sides of a run see it at once.
var ErrPairingCodeMismatch = errors.New("pairing code mismatch: the pairing code did not match (mistyped, or not the peer showing it)")

// ErrPairingCodeExpired is returned by an [Offer] whose lifetime is over,
// whatever code the peer proves.
var ErrPairingCodeExpired = errors.New("pairing code expired: show a new code")

// ErrPairingCodeUsedUp is returned by an [Offer] that has already paired a
// peer, or has had as many attempts as it allows, whatever code the peer
// proves.
var ErrPairingCodeUsedUp = errors.New("pairing code used up: it has paired a peer or was tried too many times; show a new code")
