package nearnet

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/internal/advert"
	"github.com/nearnet/nearnet/internal/pairing"
	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/security"
)

// Pairing by a short code (PROTOCOL.md, section 16): one side shows a
// code ([Node.OfferPairing]), the other types it ([Node.AnswerPairing]);
// either side may dial ([Pairing.Connect]) or be dialed ([Pairing.Wait]).
// The exchange runs in the link handshake, between the WebSocket upgrade
// and the hello, so that the connection it ran on becomes an ordinary
// [Conn] once both sides have pinned each other.

var (
	// ErrPairingCodeMismatch means the two sides of a pairing run held
	// different codes (or were not on the same TLS session, as through a
	// relay). Both sides see it at once.
	ErrPairingCodeMismatch = security.ErrPairingCodeMismatch

	// ErrPairingCodeExpired means the code's lifetime is over.
	ErrPairingCodeExpired = security.ErrPairingCodeExpired

	// ErrPairingCodeUsedUp means the code has paired a peer or has been
	// tried as often as it allows.
	ErrPairingCodeUsedUp = security.ErrPairingCodeUsedUp

	// ErrNotPairing means the peer shows no code and typed none: it is
	// not pairing now.
	ErrNotPairing = pairing.ErrNotPairing
)

// PairingError is a pairing run that failed. Err is one of
// [ErrPairingCodeMismatch], [ErrPairingCodeExpired],
// [ErrPairingCodeUsedUp] or [ErrNotPairing], or nil for another fault
// (both sides in the same role, a malformed message), which Reason
// describes.
type PairingError struct {
	Remote bool   // the peer reported it in a close frame; false: this side found it
	Reason string // what went wrong
	Err    error
}

func (e *PairingError) Error() string {
	if e.Remote {
		return "nearnet: pairing failed at the peer: " + e.Reason
	}
	return "nearnet: pairing failed: " + e.Reason
}

func (e *PairingError) Unwrap() error { return e.Err }

// pairingFailure wraps err, found on this side, as a *PairingError.
func pairingFailure(err error) error {
	if _, ok := errorsAs[*PairingError](err); ok {
		return err
	}
	reason, s := pairing.Describe(err)
	return &PairingError{Reason: reason, Err: s}
}

// pairingClosed is the error a close frame with code 4007 means.
func pairingClosed(reason string) error {
	return &PairingError{Remote: true, Reason: reason, Err: pairing.Named(reason)}
}

// pairingReason is the close reason for a pairing failure (which
// pairingClosed maps back).
func pairingReason(err error) string {
	var own string
	if pe, ok := errorsAs[*PairingError](err); ok {
		own = pe.Reason
	}
	return pairing.Reason(err, own)
}

// PairingOptions sets the limits of a [Pairing]. A nil *PairingOptions
// gives the defaults.
type PairingOptions struct {
	// MaxAttempts is how many runs may use the code: each run in which
	// the peer had its guess counts, whether it succeeded or not. If zero,
	// 3 (security.DefaultPairingAttempts); at most 10.
	MaxAttempts int

	// Lifetime is how long the code is accepted. If zero, 5 minutes
	// (security.DefaultPairingLifetime); at most an hour.
	Lifetime time.Duration

	// OnFailure, if set, is called with each failed run's error (a
	// *PairingError), on the node's callback goroutine, with no lock
	// held. The pairing goes on while it has attempts left.
	OnFailure func(err error)
}

// Pairing is a code this node shows or was given, until it has paired one
// peer, its attempts are used up, it expires, or it is closed. A node runs
// at most one Pairing at a time; while it runs, incoming connections that
// ask to pair are paired against it. Its methods are safe for concurrent
// use.
//
// Pairing needs a node in SecurityPinned mode. The peer it pairs is
// trusted by this Node from then on, and added to Config.KnownPeersFile,
// if set (replacing an earlier entry for the same identity), so later
// connections between the two need no code.
type Pairing struct {
	n *Node
	s *pairing.State[Peer]
}

// pairState is a node's pairing: the running Pairing and the identities
// paired since the node started.
type pairState struct {
	cur  atomic.Pointer[Pairing]
	pins pairing.Pins
	pr   *pairing.Pairer[Peer] // the node's session.Pairer
}

// OfferPairing makes a new code for the user to show (see
// [security.PairingCode.Reveal]) and accepts it from the peer that types
// it, until it has paired one peer or runs out of attempts or time.
func (n *Node) OfferPairing(opts *PairingOptions) (*Pairing, error) {
	return n.newPairing(security.NewPairingCode(), true, opts)
}

// AnswerPairing pairs with the peer that shows code, which the user typed
// (see [security.ParsePairingCode]). Every run gives the peer on the other
// end one guess at the code, so the answering side has the same limits as
// the offering one.
func (n *Node) AnswerPairing(code security.PairingCode, opts *PairingOptions) (*Pairing, error) {
	if code.IsZero() {
		return nil, errors.New("nearnet: AnswerPairing: the code is unset; parse it with security.ParsePairingCode")
	}
	return n.newPairing(code, false, opts)
}

func (n *Node) newPairing(code security.PairingCode, offering bool, opts *PairingOptions) (*Pairing, error) {
	if n.cfg.Security != SecurityPinned {
		return nil, &ConfigError{Field: "Config.Security", Value: n.cfg.Security,
			Reason: "pairing pins the peer's identity: it needs SecurityPinned (set KnownPeersFile to keep what it pins)"}
	}
	var o PairingOptions
	if opts != nil {
		o = *opts
	}
	s, err := pairing.New[Peer](code, offering, o.MaxAttempts, o.Lifetime)
	if oe, ok := errorsAs[*pairing.OptionError](err); ok {
		return nil, &ConfigError{Field: "PairingOptions." + oe.Field, Value: o, Reason: oe.Reason}
	}
	s.OnFailure = o.OnFailure
	p := &Pairing{n: n, s: s}
	if err := pairing.Install(&n.pair.cur, p, func(old *Pairing) bool { return old.Err() == nil }); err != nil {
		s.Close(ErrClosed)
		return nil, err
	}
	return p, nil
}

// Code returns the code: the one to show, or the one typed.
func (p *Pairing) Code() security.PairingCode { return p.s.Code() }

// Offering reports whether this side shows the code (else it typed it).
func (p *Pairing) Offering() bool { return p.s.Offering() }

// Expires returns when the code stops being accepted.
func (p *Pairing) Expires() time.Time { return p.s.Expires() }

// Err returns why the pairing accepts no more runs, or nil while it does.
// After a success it is [ErrPairingCodeUsedUp].
func (p *Pairing) Err() error { return p.s.Err() }

// Wait returns the peer once a run has paired it, dialed or accepted; its
// connection is then a ready [Conn] (for an incoming one, from
// [Node.Accept] as usual). It returns [ErrPairingCodeUsedUp],
// [ErrPairingCodeExpired] or [ErrClosed] once the pairing can no longer
// succeed, or ctx's error.
func (p *Pairing) Wait(ctx context.Context) (Peer, error) { return p.s.Wait(ctx) }

// Close ends the pairing: the code is no longer accepted. A peer already
// paired stays trusted.
func (p *Pairing) Close() {
	p.s.Close(ErrClosed)
	p.n.pair.cur.CompareAndSwap(p, nil)
}

// Connect dials target ("host:port", a PeerID or an instance name, as
// [Node.Connect]) and pairs with it: the peer must be pairing in the other
// role (showing the code this side typed, or having typed the code this
// side shows). It returns the connection, ready, once both sides have
// pinned each other; [Conn.Peer] names the peer. A code mismatch is a
// [*PairingError] for which errors.Is(err, ErrPairingCodeMismatch) holds,
// returned as soon as the exchange shows it.
//
// Connect always dials, even if a connection to the peer exists, and
// tries the peer's addresses one at a time (each run is one guess at the
// code).
func (p *Pairing) Connect(ctx context.Context, target string) (*Conn, error) {
	if err := p.Err(); err != nil {
		return nil, err
	}
	l, err := p.n.pair.pr.Connect(ctx, p.s, target)
	if err != nil {
		return nil, err
	}
	c, _, err := p.n.attach(l)
	return c, err
}

// pairingFor returns the pairing run a dial with ctx is to carry (as a
// session.Path's Pairing), or nil.
var pairingFor = pairing.RunFor[Peer]

// pairer is the node's session.Pairer: pairing in the link handshake.
func (n *Node) pairer() session.Pairer {
	n.pair.pr = &pairing.Pairer[Peer]{
		HS: &n.hs, Pins: &n.pair.pins, Local: n.Fingerprint, Queue: n.events.Queue,
		Failure: pairingFailure, Peer: publicPeer, KnownPeersFile: n.cfg.KnownPeersFile,
		Current: func() *pairing.State[Peer] {
			if p := n.pair.cur.Load(); p != nil {
				return p.s
			}
			return nil
		},
		Dialing: pairing.Dialing{
			Dials: &n.dialer, Start: n.startPathMonitor, Stop: isRejection, Unwrap: unwrapSingleRejection,
			Resolve: func(ctx context.Context, target string) ([]string, []string, error) {
				a, err := n.Resolve(ctx, target)
				if err != nil {
					return nil, nil, err
				}
				return advertTargets(a)
			},
			NoTransport: func(offered []string) error {
				return fmt.Errorf("%w: it offers %q, this node dials %v", errNoTransport, offered, n.cfg.Transport)
			},
		},
	}
	return n.pair.pr
}

// advertTargets returns the addresses ("host:port") an advert offers and
// the transports to reach them by.
func advertTargets(a Advert) (addrs, offered []string, err error) {
	return advert.Targets(a.Name, !a.ID.IsZero(), a.Addrs, a.Port, a.Transports, a.Service)
}
