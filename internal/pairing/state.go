// Package pairing runs pairing by a short code (PROTOCOL.md, section 16)
// for a node: the state of a code shown or typed ([State]: its attempts,
// lifetime and outcome), the identities paired at runtime ([Pins]), and
// the exchange's messages in the link handshake ([Dial], [Accept]). The
// CPace exchange itself is the security package's; the public API
// (nearnet.Pairing) is the root's, which hooks these into its handshake.
package pairing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"time"

	"github.com/nearnet/nearnet/security"
)

// State is a code this node shows (offering) or was given (answering),
// until it has paired one peer (of type P), its attempts are used up, it
// expires, or it is closed. It is safe for concurrent use.
type State[P any] struct {
	offer   *security.Offer // the offering side; nil when answering
	code    security.PairingCode
	max     int
	expires time.Time

	// OnFailure, if set, is called (by Pairer, on the node's callback
	// goroutine) with each failed run's error. Set it before the State is
	// used.
	OnFailure func(error)

	mu       sync.Mutex  // guards the fields below
	timer    *time.Timer // ends the pairing at expires
	attempts int         // runs started (answering side; the Offer counts its own)
	paired   bool
	peer     P     // valid once paired
	err      error // why no more runs are accepted; set with done closed
	done     chan struct{}
}

// OptionError is a limit out of range; Field is "MaxAttempts" or
// "Lifetime".
type OptionError struct {
	Field, Reason string
}

func (e *OptionError) Error() string { return e.Field + ": " + e.Reason }

// New starts the state of code, offering or answering, with at most
// maxAttempts runs (0: security.DefaultPairingAttempts) within lifetime
// (0: security.DefaultPairingLifetime).
func New[P any](code security.PairingCode, offering bool, maxAttempts int, lifetime time.Duration) (*State[P], error) {
	off, err := security.NewOffer(code, &security.OfferConfig{MaxAttempts: maxAttempts, Lifetime: lifetime})
	if err != nil {
		field := "MaxAttempts"
		if strings.Contains(err.Error(), "Lifetime") {
			field = "Lifetime"
		}
		return nil, &OptionError{Field: field, Reason: strings.TrimPrefix(err.Error(), "security: ")}
	}
	s := &State[P]{code: code, max: maxAttempts, expires: off.Expires(), done: make(chan struct{})}
	if s.max == 0 {
		s.max = security.DefaultPairingAttempts
	}
	if offering {
		s.offer = off
	}
	s.mu.Lock() // finish reads s.timer
	s.timer = time.AfterFunc(time.Until(s.expires), func() { s.finish(false, *new(P), security.ErrPairingCodeExpired) })
	s.mu.Unlock()
	return s, nil
}

// Code returns the code: the one shown, or the one typed.
func (s *State[P]) Code() security.PairingCode { return s.code }

// Offering reports whether this side shows the code.
func (s *State[P]) Offering() bool { return s.offer != nil }

// Expires returns when the code stops being accepted.
func (s *State[P]) Expires() time.Time { return s.expires }

// Err returns why no more runs are accepted, or nil while they are; after
// a success, security.ErrPairingCodeUsedUp.
func (s *State[P]) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paired {
		return security.ErrPairingCodeUsedUp
	}
	return s.err
}

// Wait returns the paired peer, or why the pairing can no longer succeed,
// or ctx's error.
func (s *State[P]) Wait(ctx context.Context) (P, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return *new(P), ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peer, s.err
}

// Close ends the pairing with err, unless it has ended already.
func (s *State[P]) Close(err error) { s.finish(false, *new(P), err) }

// Paired records the peer a run paired.
func (s *State[P]) Paired(peer P) { s.finish(true, peer, nil) }

func (s *State[P]) finish(paired bool, peer P, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paired || s.err != nil {
		return
	}
	s.paired, s.peer, s.err = paired, peer, err
	s.timer.Stop()
	close(s.done)
}

// Start begins a run over a TLS connection whose handshake is done; local
// is this side's fingerprint. The answering side counts the run here (the
// offering side's security.Offer counts it when the peer's message
// arrives).
func (s *State[P]) Start(cs *tls.ConnectionState, local security.Fingerprint) (*security.Pairing, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if s.offer != nil {
		return s.offer.Start(cs, local)
	}
	s.mu.Lock()
	switch {
	case !time.Now().Before(s.expires):
		s.mu.Unlock()
		return nil, security.ErrPairingCodeExpired
	case s.attempts >= s.max:
		s.mu.Unlock()
		return nil, security.ErrPairingCodeUsedUp
	}
	s.attempts++
	s.mu.Unlock()
	return security.StartAnswer(s.code, cs, local)
}

// Failed notes a failed run: it ends the pairing if no attempts are left.
func (s *State[P]) Failed() {
	if s.offer != nil {
		if dead := s.offer.Err(); dead != nil {
			s.Close(dead)
		}
		return
	}
	s.mu.Lock()
	used := s.attempts >= s.max
	s.mu.Unlock()
	if used {
		s.Close(security.ErrPairingCodeUsedUp)
	}
}

// Pins are the identities a node paired with since it started.
type Pins struct {
	mu     sync.Mutex // guards pinned
	pinned map[security.Fingerprint]bool
}

// Pin trusts fp.
func (p *Pins) Pin(fp security.Fingerprint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pinned == nil {
		p.pinned = map[security.Fingerprint]bool{}
	}
	p.pinned[fp] = true
}

// Verifier trusts the pinned identities, then asks base (which may be nil:
// nothing else is trusted).
func (p *Pins) Verifier(base func(*x509.Certificate) error) func(*x509.Certificate) error {
	return func(c *x509.Certificate) error {
		fp := security.FingerprintOf(c)
		p.mu.Lock()
		ok := p.pinned[fp]
		p.mu.Unlock()
		if ok {
			return nil
		}
		if base == nil {
			return &security.UntrustedPeerError{Fingerprint: fp}
		}
		return base(c)
	}
}
