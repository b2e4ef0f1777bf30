package discovery

import (
	"errors"
	"fmt"

	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/unicastdns"
)

// TSIGKey is the key that signs wide-area registrations (RFC 8945): its
// name as the DNS server's configuration spells it, its algorithm and the
// shared secret. The zero TSIGKey signs nothing, which is enough to browse.
// String never shows the secret.
type TSIGKey struct {
	Name      string // e.g. "nearnet-update"
	Algorithm string // "hmac-sha256" (the default when empty), "hmac-sha1", "hmac-sha224", "hmac-sha384" or "hmac-sha512"
	Secret    []byte // raw bytes (base64 in key files and flags)
}

// String returns "name (algorithm)" or "no key", without the secret.
func (k TSIGKey) String() string { return k.internal().String() }

// IsZero reports whether k is the zero key.
func (k TSIGKey) IsZero() bool { return k.internal().IsZero() }

func (k TSIGKey) internal() unicastdns.Key {
	return unicastdns.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}
}

func tsigKeyOf(k unicastdns.Key) TSIGKey {
	return TSIGKey{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}
}

// ParseTSIGKey parses "name:algorithm:base64secret" (nsupdate -y's form;
// "name:base64secret" means hmac-sha256). The error, a [*FieldError],
// never shows the secret.
func ParseTSIGKey(s string) (TSIGKey, error) {
	k, err := unicastdns.ParseKey(s)
	if err != nil {
		return TSIGKey{}, fieldErr(err)
	}
	return tsigKeyOf(k), nil
}

// LoadTSIGKeyFile reads a key file as BIND's tsig-keygen writes it
// (key "name" { algorithm hmac-sha256; secret "base64"; };), or one
// holding "name:algorithm:base64secret". Like nearnet's other key files it
// is refused if other users could read it (mode bits 077).
func LoadTSIGKeyFile(path string) (TSIGKey, error) {
	k, err := unicastdns.LoadKeyFile(path)
	if err != nil {
		return TSIGKey{}, err
	}
	return tsigKeyOf(k), nil
}

// ErrTSIGKey is matched (errors.Is) by a [*DNSError] that says the DNS server
// rejected the TSIG key: a name it does not know, or a secret or algorithm
// that differs from its own. It is permanent: nothing is retried.
var ErrTSIGKey = errors.New("discovery: the DNS server rejected the TSIG key")

// DNSError reports a wide-area query or registration the DNS server
// refused or did not answer.
type DNSError struct {
	Op        string // "query" or "update"
	Name      string // the name queried, or the zone updated
	Server    string // host:port
	Rcode     int    // the response's RCODE (5 REFUSED, 9 NOTAUTH...), or -1 if none came
	TSIGError int    // the TSIG error the server reported (16 BADSIG, 17 BADKEY, 18 BADTIME), or 0
	Permanent bool   // trying again cannot help (a rejected key, REFUSED...); false for timeouts and SERVFAIL

	err *unicastdns.Error
}

func (e *DNSError) Error() string {
	return "discovery: wide-area" + e.err.Error()[len("unicastdns:"):]
}

// Unwrap returns the underlying network or signature error, if any.
func (e *DNSError) Unwrap() error { return e.err.Err }

// Is matches [ErrTSIGKey] when the server rejected the key.
func (e *DNSError) Is(target error) bool {
	return target == ErrTSIGKey && errors.Is(e.err, unicastdns.ErrBadKey)
}

// Timeout reports whether no answer came in time.
func (e *DNSError) Timeout() bool { return e.err.Timeout() }

// dnsErr converts the errors of internal/unicastdns into this package's.
func dnsErr(err error) error {
	var e *unicastdns.Error
	if errors.As(err, &e) {
		return &DNSError{Op: e.Op, Name: e.Name, Server: e.Server, Rcode: e.Rcode, TSIGError: e.TSIGError, Permanent: e.Permanent(), err: e}
	}
	return fieldErr(err)
}

// fieldErr turns an internal ConfigError into a FieldError.
func fieldErr(err error) error {
	var ce *nnerr.ConfigError
	if errors.As(err, &ce) {
		return &FieldError{Field: "WideAreaConfig." + ce.Field, Value: fmt.Sprint(ce.Value), Reason: ce.Reason}
	}
	return err
}

// isPermanent reports whether err is a permanent DNSError, a FieldError or
// ErrConflict.
func isPermanent(err error) bool {
	var de *DNSError
	var fe *FieldError
	return errors.As(err, &de) && de.Permanent || errors.As(err, &fe) || errors.Is(err, ErrConflict)
}
