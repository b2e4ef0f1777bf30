package security

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"time"
)

// Identity is a node's long-term key pair and the certificate it presents in
// TLS. Peers recognise it by its [Fingerprint].
//
// The key is ECDSA P-256, not Ed25519, because Apple's TLS (sec_identity)
// does not accept Ed25519 certificates.
//
// An Identity is immutable, so it is safe for concurrent use by multiple
// goroutines.
type Identity struct {
	key   *ecdsa.PrivateKey
	chain [][]byte // DER certificates; chain[0] is the leaf
	leaf  *x509.Certificate
	fp    Fingerprint
}

// notAfter is RFC 5280's "no well-defined expiration date" (4.1.2.5): a node's
// identity is trusted by its key's fingerprint, not by dates, and an expiry
// would only silently break pinned peers years later.
var notAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// NewIdentity returns a new identity: a fresh P-256 key and a self-signed
// certificate for it, with a random 128-bit serial number, subject CN
// "nearnet", valid from an hour ago (tolerating clock skew between peers)
// until 9999-12-31T23:59:59Z, key usage DigitalSignature and extended key
// usage ServerAuth and ClientAuth (a node is both). It names no host: peers
// are authenticated by fingerprint or by the session's proof, not by name.
func NewIdentity() (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("security: generating identity key: %w", err)
	}
	serial := new(big.Int)
	for serial.Sign() == 0 { // RFC 5280 requires a positive serial
		if serial, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); err != nil {
			return nil, fmt.Errorf("security: generating serial number: %w", err)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "nearnet"},
		NotBefore:             time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("security: creating certificate: %w", err)
	}
	return newIdentity(key, [][]byte{der})
}

func newIdentity(key *ecdsa.PrivateKey, chain [][]byte) (*Identity, error) {
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, err
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("the certificate does not match the private key")
	}
	return &Identity{key: key, chain: chain, leaf: leaf, fp: FingerprintOf(leaf)}, nil
}

// TLSCertificate returns the identity as a certificate for [tls.Config]. The
// byte slices are shared with the Identity and must not be modified.
func (id *Identity) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: append([][]byte(nil), id.chain...),
		PrivateKey:  id.key,
		Leaf:        id.leaf,
	}
}

// Fingerprint returns the fingerprint peers see for this identity.
func (id *Identity) Fingerprint() Fingerprint { return id.fp }

// LoadOrCreateIdentity loads the identity stored at path, or creates one with
// [NewIdentity] and stores it there if no file exists.
//
// The file is PEM: one "PRIVATE KEY" block (unencrypted PKCS#8, ECDSA P-256)
// and one or more "CERTIFICATE" blocks, the first being the certificate for
// that key and any others its issuers (for PKI mode, where a CA-issued
// certificate replaces the self-signed one). Text outside the blocks is
// ignored, as OpenSSL does. A new file is written to a temporary file and
// then linked into place, with mode 0600 in a directory created with mode
// 0700 if missing, so a crash or a concurrent creator never leaves a partial
// or replaced file.
//
// A file that exists is never replaced. If it is unreadable, malformed, holds
// a certificate for another key, or (on Unix) is accessible to group or
// others, LoadOrCreateIdentity returns an error naming path and saying what
// is wrong; the caller must fix or remove the file.
func LoadOrCreateIdentity(path string) (*Identity, error) {
	for attempt := 0; ; attempt++ {
		data, err := readPrivateFile(path, "identity file")
		if err == nil {
			return parseIdentity(path, data)
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt > 0 {
			return nil, err
		}
		id, err := NewIdentity()
		if err != nil {
			return nil, err
		}
		err = createFile(path, id.encode())
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("security: creating identity file: %w", err)
		}
		// Another process created it first; use theirs.
	}
}

func (id *Identity) encode() []byte {
	key, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		panic("security: marshalling a P-256 key: " + err.Error()) // cannot happen
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: key})
	for _, der := range id.chain {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.Bytes()
}

func parseIdentity(path string, data []byte) (*Identity, error) {
	fail := func(format string, args ...any) (*Identity, error) {
		return nil, &ParseError{What: "identity file", Path: path, Reason: fmt.Sprintf(format, args...) +
			"; fix the file, or remove it to create a new identity (with a new fingerprint that peers must trust anew)"}
	}
	var key *ecdsa.PrivateKey
	var chain [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if len(b.Headers) > 0 {
			return fail("%s block has headers (legacy encryption?); expected unencrypted PEM", b.Type)
		}
		switch b.Type {
		case "PRIVATE KEY":
			if key != nil {
				return fail("more than one PRIVATE KEY block")
			}
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return fail("PRIVATE KEY block: %v", err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok || ek.Curve != elliptic.P256() {
				kind := fmt.Sprintf("%T", k)
				if ok {
					kind = "ECDSA " + ek.Curve.Params().Name
				}
				return fail("the private key is %s; expected ECDSA P-256, which Apple's TLS accepts", kind)
			}
			key = ek
		case "CERTIFICATE":
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fail("CERTIFICATE block %d: %v", len(chain)+1, err)
			}
			chain = append(chain, b.Bytes)
		case "EC PRIVATE KEY", "RSA PRIVATE KEY":
			return fail("found a %s block; expected PKCS#8 \"PRIVATE KEY\" (convert with: openssl pkcs8 -topk8 -nocrypt)", b.Type)
		case "ENCRYPTED PRIVATE KEY":
			return fail("the private key is encrypted; expected an unencrypted PKCS#8 key protected by file permissions")
		default:
			return fail("unexpected %q block; expected PRIVATE KEY and CERTIFICATE", b.Type)
		}
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return fail("a PEM block is truncated or corrupt")
	}
	if key == nil {
		return fail("no PRIVATE KEY block")
	}
	if len(chain) == 0 {
		return fail("no CERTIFICATE block")
	}
	id, err := newIdentity(key, chain)
	if err != nil {
		return fail("%v", err)
	}
	return id, nil
}
