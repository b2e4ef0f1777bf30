package security

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
)

// PairingCode is the short secret one side shows and the other types to
// pair: six decimal digits, about 19.9 bits.
//
// Six digits rather than words from a list: digits read aloud the same in
// every language, type on any keyboard (and a phone's number pad), need no
// word list shipped and kept in step between implementations, and are the
// form people know from Bluetooth and LocalSend PINs. The code only has to
// resist an online attack, because the PAKE gives an attacker one guess per
// run and an [Offer] allows [DefaultPairingAttempts] runs: the chance that an
// attacker who is not shown the code pairs is at most 3 in 1,000,000 per
// code.
//
// A PairingCode never prints itself: String, GoString and every fmt verb
// give "[pairing code]", so it cannot leak into logs or error messages by
// accident. [PairingCode.Reveal] gives the digits, to show to the user.
//
// A PairingCode is immutable; it is safe to copy. Copies compare equal with
// ==, but two codes made separately do not, even with the same digits. The
// zero value is no code and is rejected wherever a code is used.
type PairingCode struct {
	// digits are ASCII '0' to '9'. Behind a pointer so that a struct with a
	// PairingCode in an unexported field, where fmt cannot call Format,
	// prints an address rather than the digits' bytes (except under a verb
	// wrong for a struct, such as %s, where fmt dumps what the pointer
	// points to).
	digits *[pairingCodeLen]byte
}

const pairingCodeLen = 6

// NewPairingCode returns a new code, uniformly random over the 10^6 codes,
// from crypto/rand.
func NewPairingCode() PairingCode {
	const n = 1_000_000
	const limit = (1 << 32) / n * n // reject the top sliver for uniformity
	var b [4]byte
	for {
		rand.Read(b[:]) // never fails (Go 1.24 and later)
		if v := binary.LittleEndian.Uint32(b[:]); v < limit {
			c := PairingCode{new([pairingCodeLen]byte)}
			copy(c.digits[:], fmt.Sprintf("%06d", v%n))
			return c
		}
	}
}

// ParsePairingCode parses a code as a person types it: six ASCII digits,
// with any spaces or hyphens between them ("123456", "123 456", "123-456").
// Errors are [*ParseError]s that never include the text.
func ParsePairingCode(s string) (PairingCode, error) {
	c := PairingCode{new([pairingCodeLen]byte)}
	n := 0
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == ' ' || ch == '-':
		case '0' <= ch && ch <= '9':
			if n < pairingCodeLen {
				c.digits[n] = ch
			}
			n++
		default:
			return PairingCode{}, &ParseError{What: "pairing code", Reason: "expected 6 digits (spaces and hyphens allowed), character " + strconv.Itoa(i+1) + " is not a digit"}
		}
	}
	if n != pairingCodeLen {
		return PairingCode{}, &ParseError{What: "pairing code", Reason: "expected 6 digits (spaces and hyphens allowed), got " + strconv.Itoa(n)}
	}
	return c, nil
}

// Reveal returns the code as "123-456": three digits, a hyphen, three
// digits, which reads aloud in two halves and stays one shell argument.
// [ParsePairingCode] reads it back. Show it to the user; never log it. The
// zero PairingCode reveals "".
func (c PairingCode) Reveal() string {
	if c.IsZero() {
		return ""
	}
	return string(c.digits[:3]) + "-" + string(c.digits[3:])
}

// IsZero reports whether c is the zero value (no code).
func (c PairingCode) IsZero() bool { return c.digits == nil }

// String returns "[pairing code]", never the digits; see [PairingCode.Reveal].
func (c PairingCode) String() string { return "[pairing code]" }

// GoString is String, so %#v does not print the digits either.
func (c PairingCode) GoString() string { return c.String() }

// Format implements [fmt.Formatter]: every verb prints [PairingCode.String].
func (c PairingCode) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

// prs is CPace's password-related string: the six ASCII digits, without
// separators. (RFC 8265's OpaqueString profile leaves ASCII digits as they
// are.)
func (c PairingCode) prs() []byte { return c.digits[:] }
