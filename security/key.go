package security

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Key is a 256-bit pre-shared key. Both peers must hold the same Key; each
// proves it to the other with [Proof] without revealing it. The all-zero Key
// is the unset value and is rejected wherever a key is used.
//
// A Key is a value; it is safe to copy and compare with ==.
type Key [32]byte

// GenerateKey returns a new random key from crypto/rand.
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("security: generating pre-shared key: %w", err)
	}
	return k, nil
}

// String returns the key as 64 lowercase hex digits, the form [ParseKey] and
// [LoadKeyFile] read. It is the secret itself: do not log it.
func (k Key) String() string {
	return hex.EncodeToString(k[:])
}

// ParseKey parses 64 hex digits, in either case. Errors are [*ParseError]s
// that never include the text, since it may be (nearly) the key.
func ParseKey(s string) (Key, error) {
	const expected = "expected 64 hex digits (256 bits), "
	fail := func(detail string) (Key, error) {
		return Key{}, &ParseError{What: "pre-shared key", Reason: expected + detail}
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return fail(fmt.Sprintf("character %d is not a hex digit", i+1))
		}
	}
	if len(s) != 64 {
		return fail(fmt.Sprintf("got %d", len(s)))
	}
	var k Key
	hex.Decode(k[:], []byte(s)) // cannot fail: checked above
	if k == (Key{}) {
		return fail("got the all-zero key, which is never accepted: generate a random one")
	}
	return k, nil
}

// LoadKeyFile reads a key from the first line of the file at path that is
// neither empty nor a comment (starting with '#'), with surrounding spaces
// removed. On Unix the file must not be accessible to group or others,
// because whoever reads the key can join the network.
func LoadKeyFile(path string) (Key, error) {
	data, err := readPrivateFile(path, "pre-shared key file")
	if err != nil {
		return Key{}, err
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			pe := err.(*ParseError)
			pe.Path, pe.Line = path, i+1
			return Key{}, pe
		}
		return k, nil
	}
	return Key{}, &ParseError{What: "pre-shared key file", Path: path,
		Reason: "no key found: expected a line of 64 hex digits (256 bits); lines starting with # are comments"}
}
