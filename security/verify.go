package security

import (
	"crypto/x509"
	"fmt"
)

// PinVerifier returns a verify function for [ServerConfig] and [ClientConfig]
// that accepts exactly the certificates whose public keys have one of the
// allowed fingerprints, and returns an [*UntrustedPeerError] for any other.
// It copies allowed, and is safe for concurrent use.
func PinVerifier(allowed ...Fingerprint) func(leaf *x509.Certificate) error {
	set := make(map[Fingerprint]bool, len(allowed))
	for _, fp := range allowed {
		set[fp] = true
	}
	return func(leaf *x509.Certificate) error {
		fp := FingerprintOf(leaf)
		if !set[fp] {
			return &UntrustedPeerError{Fingerprint: fp}
		}
		return nil
	}
}

// KnownPeersVerifier returns a verify function that accepts the peers in kp.
// Without tofu, any other peer gets an [*UntrustedPeerError]. With tofu
// (trust on first use) any other peer is accepted and added to kp, with no
// name; if it cannot be recorded the verify function fails, so a peer is
// never trusted without being remembered. It is safe for concurrent use,
// as kp is.
//
// Unlike SSH, a bare certificate carries no host name to tie a key to, so
// TOFU here accepts every new peer: it is for enrolling peers during setup,
// after which the caller turns it off and the set is fixed.
func KnownPeersVerifier(kp *KnownPeers, tofu bool) func(leaf *x509.Certificate) error {
	return func(leaf *x509.Certificate) error {
		fp := FingerprintOf(leaf)
		if kp.Contains(fp) {
			return nil
		}
		if !tofu {
			return &UntrustedPeerError{Fingerprint: fp}
		}
		if err := kp.Add(fp, ""); err != nil {
			return fmt.Errorf("security: trusting %s on first use: %w", fp, err)
		}
		return nil
	}
}

// RootsVerifier returns a verify function for PKI mode: the peer's
// certificate must chain to a certificate in roots and may have any extended
// key usage; host names are not checked. Only the peer's leaf certificate is
// seen, so any intermediate CA must itself be added to roots. A nil roots
// trusts nothing; it never means the system roots, which would admit anyone
// holding a public web certificate. A rejection is an [*UntrustedPeerError]
// whose Err says why. The verify function is safe for concurrent use as long
// as roots is not modified after this call.
func RootsVerifier(roots *x509.CertPool) func(leaf *x509.Certificate) error {
	if roots == nil {
		roots = x509.NewCertPool()
	}
	return func(leaf *x509.Certificate) error {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return &UntrustedPeerError{Fingerprint: FingerprintOf(leaf), Err: err}
		}
		return nil
	}
}
