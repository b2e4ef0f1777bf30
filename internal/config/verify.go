package config

import (
	"crypto/x509"

	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/security"
)

// Verifier returns the certificate check of the pinned or PKI mode: the
// fingerprints of trust, the known-peers file (learning unknown peers
// with tofu), the roots; either one vouching is enough. It is nil if
// certificates are not checked (PSK: the proof authenticates). A
// known-peers file that cannot be read is a ConfigError.
func Verifier(trust []security.Fingerprint, knownPeersFile string, tofu bool, roots *x509.CertPool) (func(*x509.Certificate) error, error) {
	var pins []func(*x509.Certificate) error
	if len(trust) > 0 {
		pins = append(pins, security.PinVerifier(trust...))
	}
	if knownPeersFile != "" {
		kp, err := security.LoadKnownPeers(knownPeersFile)
		if err != nil {
			return nil, &nnerr.ConfigError{Field: "Config.KnownPeersFile", Value: knownPeersFile, Reason: err.Error()}
		}
		pins = append(pins, security.KnownPeersVerifier(kp, tofu))
	}
	if roots != nil {
		pins = append(pins, security.RootsVerifier(roots))
	}
	switch len(pins) {
	case 0:
		return nil, nil
	case 1:
		return pins[0], nil
	}
	return func(c *x509.Certificate) error {
		var err error
		for _, p := range pins {
			if err = p(c); err == nil {
				return nil
			}
		}
		return err
	}, nil
}
