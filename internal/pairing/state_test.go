package pairing

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nearnet/nearnet/security"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAnswerAttempts: the answering side counts each run it starts and
// refuses runs past its limit; a pairing ends once, with its first
// outcome.
func TestAnswerAttempts(t *testing.T) {
	s, err := New[string](security.NewPairingCode(), false, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(errors.New("closed"))
	for i := 0; i < 2; i++ {
		// No TLS state: the run is counted, then refused for it.
		if _, err := s.Start(nil, security.Fingerprint{}); err == nil || errors.Is(err, security.ErrPairingCodeUsedUp) {
			t.Fatalf("run %d: %v", i+1, err)
		}
		s.Failed()
	}
	if _, err := s.Start(nil, security.Fingerprint{}); !errors.Is(err, security.ErrPairingCodeUsedUp) {
		t.Fatalf("third run: %v", err)
	}
	if _, err := s.Wait(context.Background()); !errors.Is(err, security.ErrPairingCodeUsedUp) {
		t.Fatalf("Wait: %v", err)
	}
	s.Paired("late")
	if p, err := s.Wait(context.Background()); p != "" || !errors.Is(err, security.ErrPairingCodeUsedUp) {
		t.Fatalf("a success after the end changed the outcome: %q %v", p, err)
	}
}

// TestExpiry: a pairing ends by itself when its lifetime is over.
func TestExpiry(t *testing.T) {
	s, err := New[string](security.NewPairingCode(), true, 0, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(context.Background()); !errors.Is(err, security.ErrPairingCodeExpired) {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := New[string](security.NewPairingCode(), true, 11, 0); err == nil {
		t.Fatal("11 attempts accepted")
	} else if oe, ok := err.(*OptionError); !ok || oe.Field != "MaxAttempts" {
		t.Fatalf("11 attempts: %v", err)
	}
}

// TestPins: a pinned identity passes the verifier before the base one is
// asked; without a base, anything else is untrusted.
func TestPins(t *testing.T) {
	a, _ := security.NewIdentity()
	b, _ := security.NewIdentity()
	var p Pins
	v := p.Verifier(nil)
	ca, cb := a.TLSCertificate().Leaf, b.TLSCertificate().Leaf
	var ue *security.UntrustedPeerError
	if err := v(ca); !errors.As(err, &ue) || ue.Fingerprint != a.Fingerprint() {
		t.Fatalf("before pinning: %v", err)
	}
	p.Pin(a.Fingerprint())
	if err := v(ca); err != nil {
		t.Fatalf("pinned: %v", err)
	}
	base := errors.New("base says no")
	if err := p.Verifier(func(*x509.Certificate) error { return base })(cb); err != base {
		t.Fatalf("unpinned with a base: %v", err)
	}
}
