package discovery

import (
	"fmt"
	"sort"
	"strings"
)

// Limits on TXT data (RFC 6763 §6).
const (
	// MaxTXTEntry is the largest encoded attribute, "key=value", in bytes.
	MaxTXTEntry = 255
	// MaxTXTSize is the largest total TXT record data accepted for
	// registration: the RFC 6763 §6.2 recommendation, which keeps a
	// service's SRV, TXT and address records inside one 1500-byte Ethernet
	// packet.
	MaxTXTSize = 1300
)

// TXTEntry is one TXT attribute, for [EncodeTXTEntries].
type TXTEntry struct {
	Key   string
	Value string
	// Bool marks a boolean attribute (RFC 6763 §6.4), encoded as the bare
	// key with no '='. Value must then be empty.
	Bool bool
}

// EncodeTXT encodes m as TXT strings "key=value", sorted by key so the
// output is deterministic. Keys must be 1 or more printable US-ASCII
// characters (0x20-0x7E) other than '=', must not repeat ignoring case, and
// each "key=value" must fit in 255 bytes. Values are opaque bytes. A nil or
// empty map encodes to no strings (the record then carries a single empty
// string on the wire, RFC 6763 §6.1). Errors are [*TXTError] values naming
// the key.
func EncodeTXT(m map[string]string) ([]string, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	entries := make([]TXTEntry, len(keys))
	for i, k := range keys {
		entries[i] = TXTEntry{Key: k, Value: m[k]}
	}
	return EncodeTXTEntries(entries)
}

// EncodeTXTEntries is [EncodeTXT] for an ordered list, which can also hold
// boolean attributes. The order is kept (RFC 6763 §6.7 suggests putting a
// "txtvers" key first).
func EncodeTXTEntries(entries []TXTEntry) ([]string, error) {
	out := make([]string, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	total := 0
	for _, e := range entries {
		if err := validateTXTKey(e.Key); err != nil {
			return nil, err
		}
		lk := strings.ToLower(e.Key)
		if seen[lk] {
			return nil, &TXTError{Key: e.Key, Reason: "duplicate key (keys are case-insensitive)"}
		}
		seen[lk] = true
		s := e.Key
		if e.Bool {
			if e.Value != "" {
				return nil, &TXTError{Key: e.Key, Reason: "boolean attribute must have an empty value"}
			}
		} else {
			s += "=" + e.Value
		}
		if len(s) > MaxTXTEntry {
			return nil, &TXTError{Key: e.Key, Reason: fmt.Sprintf("entry is %d bytes, over the %d-byte limit", len(s), MaxTXTEntry)}
		}
		total += 1 + len(s)
		out = append(out, s)
	}
	if total > MaxTXTSize {
		key := ""
		if len(entries) > 0 {
			key = entries[len(entries)-1].Key
		}
		return nil, &TXTError{Key: key, Reason: fmt.Sprintf("TXT data is %d bytes in total, over the %d-byte limit", total, MaxTXTSize)}
	}
	return out, nil
}

func validateTXTKey(k string) error {
	if k == "" {
		return &TXTError{Key: k, Reason: "key must not be empty"}
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '=' {
			return &TXTError{Key: k, Reason: "key must not contain '='"}
		}
		if c < 0x20 || c > 0x7e {
			return &TXTError{Key: k, Reason: fmt.Sprintf("key must be printable US-ASCII, found byte 0x%02x", c)}
		}
	}
	return nil
}

// DecodeTXT decodes TXT strings tolerantly (RFC 6763 §6.4-6.5): keys are
// case-insensitive and returned in lower case; the first occurrence of a key
// wins; a string with no '=' is a boolean attribute and maps to ""; empty
// strings and strings starting with '=' are skipped. It never fails. The
// result is nil when no attribute is present.
func DecodeTXT(txt []string) map[string]string {
	var m map[string]string
	for _, s := range txt {
		if s == "" || s[0] == '=' {
			continue
		}
		k, v, _ := strings.Cut(s, "=")
		k = strings.ToLower(k)
		if m == nil {
			m = make(map[string]string, len(txt))
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

// txtEqual reports whether two decoded TXT maps are equal.
func txtEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
