package security

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewIdentityCertificate(t *testing.T) {
	id := newTestIdentity(t)
	tc := id.TLSCertificate()
	if len(tc.Certificate) != 1 || tc.Leaf == nil || tc.PrivateKey == nil {
		t.Fatalf("TLSCertificate = %d certs, leaf %v, key %v", len(tc.Certificate), tc.Leaf != nil, tc.PrivateKey != nil)
	}
	cert, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("public key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", cert.SerialNumber)
	}
	if cert.Subject.CommonName != "nearnet" || cert.Issuer.CommonName != "nearnet" {
		t.Errorf("subject %v, issuer %v", cert.Subject, cert.Issuer)
	}
	if d := time.Until(cert.NotBefore); d > -59*time.Minute || d < -61*time.Minute {
		t.Errorf("NotBefore is %v from now, want about -1h", d)
	}
	if !cert.NotAfter.Equal(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("NotAfter = %v", cert.NotAfter)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v", cert.KeyUsage)
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if len(cert.ExtKeyUsage) != 2 || cert.ExtKeyUsage[0] != eku[0] || cert.ExtKeyUsage[1] != eku[1] {
		t.Errorf("ExtKeyUsage = %v", cert.ExtKeyUsage)
	}
	if cert.IsCA || len(cert.DNSNames)+len(cert.IPAddresses) != 0 {
		t.Errorf("IsCA %v, names %v %v", cert.IsCA, cert.DNSNames, cert.IPAddresses)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if got, want := id.Fingerprint(), Fingerprint(sha256.Sum256(cert.RawSubjectPublicKeyInfo)); got != want {
		t.Errorf("Fingerprint = %v, want %v", got, want)
	}
	// What the Fingerprint doc tells Apple developers: SPKI = fixed prefix || X9.63 point.
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	prefix, _ := hex.DecodeString("3059301306072a8648ce3d020106082a8648ce3d030107034200")
	if !bytes.Equal(append(prefix, point...), cert.RawSubjectPublicKeyInfo) {
		t.Error("SubjectPublicKeyInfo is not the documented prefix followed by the X9.63 point")
	}
	if other := newTestIdentity(t); other.Fingerprint() == id.Fingerprint() {
		t.Error("two new identities have the same fingerprint")
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nearnet")
	path := filepath.Join(dir, "identity.pem")
	id, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s has mode %04o, want %04o", p, fi.Mode().Perm(), want)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the identity file", len(entries))
	}
	again, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != id.Fingerprint() {
		t.Errorf("fingerprint after reload = %v, want %v", again.Fingerprint(), id.Fingerprint())
	}
	if !again.key.Equal(id.key) || !bytes.Equal(again.chain[0], id.chain[0]) {
		t.Error("reloaded key or certificate differs")
	}
}

func TestLoadOrCreateIdentityConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.pem")
	var wg sync.WaitGroup
	fps := make([]Fingerprint, 8)
	for i := range fps {
		wg.Go(func() {
			id, err := LoadOrCreateIdentity(path)
			if err != nil {
				t.Error(err)
				return
			}
			fps[i] = id.Fingerprint()
		})
	}
	wg.Wait()
	for _, fp := range fps[1:] {
		if fp != fps[0] {
			t.Fatalf("concurrent creators got different identities: %v", fps)
		}
	}
}

func TestLoadOrCreateIdentityRejects(t *testing.T) {
	good := newTestIdentity(t).encode()
	other := newTestIdentity(t)
	otherCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.chain[0]})
	keyBlock, _ := pem.Decode(good)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	ecDER, _ := x509.MarshalECPrivateKey(other.key)

	tests := []struct {
		name, content string
		want          string
	}{
		{"empty", "", "no PRIVATE KEY block"},
		{"garbage", "not a PEM file\n", "no PRIVATE KEY block"},
		{"truncated", string(good[:len(good)/2]), "truncated or corrupt"},
		{"key only", string(pem.EncodeToMemory(keyBlock)), "no CERTIFICATE block"},
		{"mismatch", string(pem.EncodeToMemory(keyBlock)) + string(otherCert), "does not match the private key"},
		{"ed25519", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})) + string(otherCert), "expected ECDSA P-256"},
		{"sec1", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})) + string(otherCert), "openssl pkcs8 -topk8"},
		{"bad cert", string(pem.EncodeToMemory(keyBlock)) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})), "CERTIFICATE block 1"},
		{"two keys", string(good) + string(pem.EncodeToMemory(keyBlock)), "more than one PRIVATE KEY"},
		{"other block", string(good) + string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}})), `unexpected "X509 CRL" block`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.pem")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateIdentity(path)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			mustContain(t, err.Error(), path, tt.want)
			if data, _ := os.ReadFile(path); string(data) != tt.content {
				t.Error("the malformed file was replaced")
			}
		})
	}
}

func TestLoadOrCreateIdentityPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	path := filepath.Join(t.TempDir(), "identity.pem")
	if _, err := LoadOrCreateIdentity(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateIdentity(path)
	if err == nil {
		t.Fatal("loaded an identity file readable by its group")
	}
	mustContain(t, err.Error(), path, "0640", "chmod 600")
}

func TestLoadIdentityWithChain(t *testing.T) {
	ca := newTestCA(t)
	id := ca.issue(t)
	path := filepath.Join(t.TempDir(), "identity.pem")
	if err := os.WriteFile(path, id.encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if tc := loaded.TLSCertificate(); len(tc.Certificate) != 2 || !bytes.Equal(tc.Certificate[1], ca.cert.Raw) {
		t.Fatalf("TLSCertificate has %d certificates, want the leaf and the CA", len(tc.Certificate))
	}
	if loaded.Fingerprint() != id.Fingerprint() {
		t.Error("fingerprint changed on reload")
	}
}

// testCA is a private certificate authority for PKI-mode tests.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key, cert}
}

// issue returns an identity whose certificate the CA signed, with the CA's
// certificate as the chain's second element.
func (ca *testCA) issue(t *testing.T) *Identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "peer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := newIdentity(key, [][]byte{der, ca.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLoadOrCreateIdentityNotAFile(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadOrCreateIdentity(dir)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v, want one saying the path is not a regular file", err)
	}
}
