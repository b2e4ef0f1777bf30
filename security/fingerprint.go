package security

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

// Fingerprint identifies a peer: the SHA-256 of its certificate's DER-encoded
// SubjectPublicKeyInfo. Hashing the public key rather than the whole
// certificate keeps a pin valid when a certificate is re-issued for the same
// key.
//
// This is not what `openssl x509 -fingerprint -sha256` prints (that hashes
// the whole certificate). The OpenSSL equivalent is
//
//	openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | sha256sum
//
// On Apple platforms, SecKeyCopyExternalRepresentation of a P-256 public key
// gives the 65-byte X9.63 point; its SubjectPublicKeyInfo is that point
// prefixed with the fixed 26 bytes
//
//	3059301306072a8648ce3d020106082a8648ce3d030107034200
//
// A Fingerprint is a value; it is safe to copy and compare with ==.
type Fingerprint [32]byte

const fingerprintPrefix = "sha256:"

// FingerprintOf returns the fingerprint of cert's public key.
func FingerprintOf(cert *x509.Certificate) Fingerprint {
	return Fingerprint(sha256.Sum256(cert.RawSubjectPublicKeyInfo))
}

// String returns "sha256:" followed by 64 lowercase hex digits, the form
// [ParseFingerprint] and the known-peers file use.
func (f Fingerprint) String() string {
	return fingerprintPrefix + hex.EncodeToString(f[:])
}

// MarshalText implements [encoding.TextMarshaler] with the [Fingerprint.String] form.
func (f Fingerprint) MarshalText() ([]byte, error) {
	return []byte(f.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler]; it accepts what
// [ParseFingerprint] accepts.
func (f *Fingerprint) UnmarshalText(text []byte) error {
	p, err := ParseFingerprint(string(text))
	if err != nil {
		return err
	}
	*f = p
	return nil
}

// ParseFingerprint parses a fingerprint written as 64 hex digits, in either
// case, optionally preceded by "sha256:" and optionally with a colon between
// every pair of digits (as OpenSSL prints digests):
//
//	sha256:3b0c...e1
//	3B0C...E1
//	3B:0C:...:E1
//
// Any other text is a [*ParseError]. Surrounding spaces are not removed.
func ParseFingerprint(s string) (Fingerprint, error) {
	const expected = `expected "sha256:" and 64 hex digits (colons between digit pairs allowed)`
	fail := func(detail string) (Fingerprint, error) {
		return Fingerprint{}, &ParseError{What: "fingerprint", Input: shorten(s), Reason: expected + ", " + detail}
	}
	digits := s
	if len(digits) >= len(fingerprintPrefix) && strings.EqualFold(digits[:len(fingerprintPrefix)], fingerprintPrefix) {
		digits = digits[len(fingerprintPrefix):]
	}
	if name, _, ok := strings.Cut(digits, ":"); ok && isDigestName(name) {
		return fail(fmt.Sprintf("got a %s digest; only sha256 is supported", name))
	}
	off := len(s) - len(digits) // for positions in messages, counted in s
	colons := strings.Contains(digits, ":")
	var buf [64]byte
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if colons && i%3 == 2 {
			if c != ':' {
				return fail(fmt.Sprintf("character %d is %q where a colon belongs", off+i+1, c))
			}
			continue
		}
		if !isHex(c) {
			return fail(fmt.Sprintf("character %d is %q, not a hex digit", off+i+1, c))
		}
		if n < len(buf) {
			buf[n] = c
		}
		n++
	}
	if n != 64 {
		return fail(fmt.Sprintf("got %d hex digits", n))
	}
	if colons && len(digits) != 95 {
		return fail("got a colon after the last digit pair")
	}
	var f Fingerprint
	hex.Decode(f[:], buf[:]) // cannot fail: checked above
	return f, nil
}

// isDigestName reports whether s looks like a hash name ("sha1", "MD5")
// rather than a hex digit pair, so the error can say what is really wrong.
func isDigestName(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		switch {
		case 'g' <= c && c <= 'z':
			letter = true
		case !isHex(s[i]) && s[i] != '-':
			return false
		}
	}
	return letter && len(s) <= 16
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
