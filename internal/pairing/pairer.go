package pairing

import (
	"crypto/tls"
	"errors"
	"strings"
	"time"

	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/security"
)

// ErrNotPairing means the peer shows no code and typed none: it is not
// pairing now.
var ErrNotPairing = errors.New("nearnet: the peer is not pairing (it shows no code and was given none)")

// Sentinels are the errors a pairing failure is, and a close frame's
// reason maps back to.
var Sentinels = []error{security.ErrPairingCodeMismatch, security.ErrPairingCodeExpired, security.ErrPairingCodeUsedUp, ErrNotPairing}

// Describe returns the reason of err, a failure found on this side, and
// the sentinel it is (nil for none).
func Describe(err error) (reason string, sentinel error) {
	reason = strings.TrimPrefix(strings.TrimPrefix(err.Error(), "nearnet: "), "security: pairing: ")
	for _, s := range Sentinels {
		if errors.Is(err, s) {
			sentinel = s
		}
	}
	return reason, sentinel
}

// Named returns the sentinel a close frame's reason (code 4007) names, or
// nil.
func Named(reason string) (sentinel error) {
	for _, s := range Sentinels {
		if strings.HasPrefix(reason, strings.TrimPrefix(s.Error(), "nearnet: ")) {
			sentinel = s
		}
	}
	return sentinel
}

// Reason is the close reason for a pairing failure: the sentinel's text
// (which Named maps back), else own (the failure's own reason) if set, else
// the error's text.
func Reason(err error, own string) string {
	for _, s := range Sentinels {
		if errors.Is(err, s) {
			return strings.TrimPrefix(s.Error(), "nearnet: ")
		}
	}
	if own != "" {
		return own
	}
	return strings.TrimPrefix(err.Error(), "security: pairing: ")
}

// Run is a link's part in a pairing (its session.Path's Pairing): set on a
// dialed link by the dial, on an accepted one when its first message asks
// to pair.
type Run[P any] struct {
	S    *State[P]
	peer security.Fingerprint // set once the peer confirmed
}

// Pairer is a node's session.Pairer: pairing in the link handshake. Its
// fields are the parts of the node a run uses.
type Pairer[P any] struct {
	HS             *session.Handshaker
	Pins           *Pins
	Current        func() *State[P]            // the running pairing, or nil
	Local          func() security.Fingerprint // this node's identity
	Queue          func(func())                // runs a callback on the node's callback goroutine
	Failure        func(error) error           // a failure found on this side, as the API reports it
	Peer           func(session.Peer) P
	KnownPeersFile string
	Dialing
}

// handshakeErr turns a close frame read during the handshake into the
// error it means.
func (pr *Pairer[P]) handshakeErr(err error) error {
	var cf *link.CloseFrameError
	if errors.As(err, &cf) {
		return pr.HS.PeerClose(cf.Code, cf.Reason)
	}
	return pr.HS.FromTransport(err)
}

// failed reports a failed run to s's OnFailure, and ends s if it has no
// attempts left.
func (pr *Pairer[P]) failed(s *State[P], err error) {
	err = pr.Failure(err)
	s.Failed()
	if f := s.OnFailure; f != nil {
		pr.Queue(func() { f(err) })
	}
}

// Dial runs the dialer's exchange (Dial) on l. The PAKE replaces the trust
// check: the peer is pinned when its tag verifies.
func (pr *Pairer[P]) Dial(l *session.Path, addr string, cs *tls.ConnectionState) error {
	r := l.Pairing.(*Run[P])
	if cs == nil {
		l.Drop()
		return pr.Failure(errors.New("pairing needs TLS (SecurityPinned)"))
	}
	run, err := r.S.Start(cs, pr.Local())
	if err != nil {
		l.Drop()
		return pr.Failure(err)
	}
	if err := Dial(l.Link, addr, run); err != nil {
		var le *LocalError
		if errors.As(err, &le) {
			err = pr.Failure(le.Err)
			if IsMismatch(err) {
				// The listener finds the mismatch from this side's tag
				// and refuses with 4007: take its close (a moment at
				// most), so that neither side waits for the other to
				// end the connection.
				l.SetDeadline(time.Now().Add(time.Second))
				for {
					if _, _, err := l.ReadFirst(); err != nil {
						break
					}
				}
				pr.HS.Drop(l, nil)
			} else {
				pr.HS.SendCloseNow(l, err) // the peer learns why at once, not by a timeout
				pr.HS.Drop(l, err)
			}
		} else {
			err = pr.handshakeErr(err)
			if d := pr.HS.Distrusted(err); d != nil {
				err = d
			}
			pr.HS.Drop(l, nil)
		}
		pr.failed(r.S, err)
		return err
	}
	pr.Pins.Pin(run.Peer())
	r.peer = run.Peer()
	return nil
}

// Accept runs the listener's side of a pairing whose first message, the
// dialer's CPace message, is first (Accept). An error is to be refused
// with a close frame (4007 and its reason).
func (pr *Pairer[P]) Accept(l *session.Path, cs *tls.ConnectionState, first []byte) error {
	s := pr.Current()
	if s == nil || cs == nil {
		return pr.Failure(ErrNotPairing)
	}
	theirs, err := First(first)
	if err != nil {
		return pr.Failure(err)
	}
	run, err := s.Start(cs, pr.Local())
	if err != nil {
		return pr.Failure(err)
	}
	r := &Run[P]{S: s}
	l.Pairing = r
	if err := Accept(l.Link, theirs, run); err != nil {
		var le *LocalError
		local := errors.As(err, &le)
		if local {
			err = pr.Failure(le.Err)
		} else {
			err = pr.handshakeErr(err)
		}
		pr.failed(s, err)
		if !local {
			// The dialer closed or the connection broke: nothing to
			// refuse (and a refusal over QUIC would wait for the dialer).
			l.Drop()
		}
		return err
	}
	pr.Pins.Pin(run.Peer())
	r.peer = run.Peer()
	return nil
}

// Done finishes a paired link once the peer's hello is checked: the
// peer's identity goes into KnownPeersFile, if set, under the name in its
// hello, and the pairing has its peer.
func (pr *Pairer[P]) Done(l *session.Path) error {
	r := l.Pairing.(*Run[P])
	if f := pr.KnownPeersFile; f != "" {
		kp, err := security.LoadKnownPeers(f)
		if err == nil {
			err = kp.Replace(r.peer, l.Peer.Name)
		}
		if err != nil {
			return pr.Failure(errors.New("pinning the paired peer in Config.KnownPeersFile: " + strings.TrimPrefix(err.Error(), "security: ")))
		}
	}
	r.S.Paired(pr.Peer(l.Peer))
	return nil
}
