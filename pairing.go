package nearnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	linkpkg "github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/pairing"
	"github.com/nearnet/nearnet/internal/wire"
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
	ErrNotPairing = errors.New("nearnet: the peer is not pairing (it shows no code and was given none)")
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

// pairingSentinels are the errors a close frame's reason maps back to.
var pairingSentinels = []error{ErrPairingCodeMismatch, ErrPairingCodeExpired, ErrPairingCodeUsedUp, ErrNotPairing}

// pairingFailure wraps err, found on this side, as a *PairingError.
func pairingFailure(err error) error {
	if _, ok := errorsAs[*PairingError](err); ok {
		return err
	}
	pe := &PairingError{Reason: strings.TrimPrefix(strings.TrimPrefix(err.Error(), "nearnet: "), "security: pairing: ")}
	for _, s := range pairingSentinels {
		if errors.Is(err, s) {
			pe.Err = s
		}
	}
	return pe
}

// pairingClosed is the error a close frame with code 4007 means.
func pairingClosed(reason string) error {
	pe := &PairingError{Remote: true, Reason: reason}
	for _, s := range pairingSentinels {
		if strings.HasPrefix(reason, strings.TrimPrefix(s.Error(), "nearnet: ")) {
			pe.Err = s
		}
	}
	return pe
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
	n         *Node
	s         *pairing.State[Peer]
	onFailure func(error)
}

// pairState is a node's pairing: the running Pairing and the identities
// paired since the node started.
type pairState struct {
	cur  atomic.Pointer[Pairing]
	pins pairing.Pins
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
	p := &Pairing{n: n, s: s, onFailure: o.OnFailure}
	for {
		old := n.pair.cur.Load()
		if old != nil && old.Err() == nil {
			s.Close(ErrClosed)
			return nil, errors.New("nearnet: this node is already pairing; close that Pairing first")
		}
		if n.pair.cur.CompareAndSwap(old, p) {
			return p, nil
		}
	}
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

// failed reports a failed run to OnFailure, and ends the pairing if it has
// no attempts left.
func (p *Pairing) failed(err error) {
	err = pairingFailure(err)
	p.s.Failed()
	if f := p.onFailure; f != nil {
		p.n.notify(func() { f(err) })
	}
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
	n := p.n
	if err := p.Err(); err != nil {
		return nil, err
	}
	var addrs, offered []string
	if _, port, err := net.SplitHostPort(target); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("nearnet: Connect %q: bad port", target)
		}
		addrs = []string{target}
	} else {
		a, err := n.Resolve(ctx, target)
		if err != nil {
			return nil, err
		}
		if addrs, offered, err = advertTargets(a); err != nil {
			return nil, err
		}
	}
	order := n.dialOrder(offered)
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: it offers %q, this node dials %v", errNoTransport, offered, n.cfg.Transport)
	}
	n.startPathMonitor()
	pctx := context.WithValue(ctx, pairingKey{}, p)
	var first error
	for _, addr := range interleaveFamilies(addrs) {
		l, err := n.dialVia(pctx, order, addr, nil)
		if err == nil {
			c, _, err := n.attach(l)
			return c, err
		}
		if first == nil {
			first = err
		}
		if isRejection(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, unwrapSingleRejection(first)
}

// pairingKey carries the Pairing a dial runs (Pairing.Connect) to dial.
type pairingKey struct{}

// pairingFor returns the pairing run a dial with ctx is to carry, or nil.
func pairingFor(ctx context.Context) *pairRun {
	if p, ok := ctx.Value(pairingKey{}).(*Pairing); ok {
		return &pairRun{p: p}
	}
	return nil
}

// pairRun is a link's part in a pairing: set on a dialed link by dial, on
// an accepted one when its first message asks to pair.
type pairRun struct {
	p    *Pairing
	peer security.Fingerprint // set once the peer confirmed
}

// handshakeErr turns a close frame read during the handshake into the
// error it means.
func (l *link) handshakeErr(err error) error {
	if cf, ok := errorsAs[*linkpkg.CloseFrameError](err); ok {
		return closeErrorFor(cf.Code, cf.Reason)
	}
	return fromTransport(err)
}

// readFirst reads the peer's first message: a hello or a pairing message
// (or a close frame, which becomes the error it means).
func (l *link) readFirst() (*wire.Hello, []byte, error) {
	h, pair, err := l.ReadFirst()
	if err != nil {
		return nil, nil, l.handshakeErr(err)
	}
	return h, pair, nil
}

// pairClientHandshake is clientHandshake for a dialed link that pairs
// (internal/pairing.Dial), then, paired, the hellos. The PAKE replaces the
// trust check: the peer is pinned when its tag verifies.
func (n *Node) pairClientHandshake(l *link, addr string, cs *tls.ConnectionState) (string, error) {
	p := l.pairing.p
	if cs == nil {
		l.Drop()
		return "tls", &PairingError{Reason: "pairing needs TLS (SecurityPinned)"}
	}
	run, err := p.s.Start(cs, n.Fingerprint())
	if err != nil {
		l.Drop()
		return "pairing", pairingFailure(err)
	}
	if err := pairing.Dial(l.Link, addr, run); err != nil {
		if le, ok := errorsAs[*pairing.LocalError](err); ok {
			err = pairingFailure(le.Err)
			if pairing.IsMismatch(err) {
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
				l.drop(nil)
			} else {
				l.sendCloseNow(err) // the peer learns why at once, not by a timeout
				l.drop(err)
			}
		} else {
			err = explainTLSAlert(l.handshakeErr(err), n)
			l.drop(nil)
		}
		p.failed(err)
		return "pairing", err
	}
	n.pair.pins.Pin(run.Peer())
	l.pairing.peer = run.Peer()
	hello, err := n.hello(l, cs, true)
	if err == nil {
		err = l.SendHandshake(hello)
	}
	if err != nil {
		l.drop(nil)
		return "hello", err
	}
	h, err := l.readHello()
	if err != nil {
		l.drop(nil)
		return "hello", err
	}
	if err := n.checkHello(l, h, cs, false); err != nil {
		l.sendCloseNow(err)
		l.drop(err)
		return "hello", err
	}
	if err := n.pairDone(l); err != nil {
		l.drop(nil)
		return "pairing", err
	}
	if err := l.setStreamKey(cs); err != nil {
		l.drop(nil)
		return "hello", err
	}
	l.startFlow()
	return "", nil
}

// pairAccepted runs the listener's side of a pairing whose first message,
// the dialer's CPace message, is first (internal/pairing.Accept), then
// reads the dialer's hello, which it returns. An error is to be refused
// with a close frame (closeCodeFor gives 4007 and its reason).
func (n *Node) pairAccepted(l *link, cs *tls.ConnectionState, first []byte) (*wire.Hello, error) {
	p := n.pair.cur.Load()
	if p == nil || cs == nil {
		return nil, pairingFailure(ErrNotPairing)
	}
	theirs, err := pairing.First(first)
	if err != nil {
		return nil, pairingFailure(err)
	}
	run, err := p.s.Start(cs, n.Fingerprint())
	if err != nil {
		return nil, pairingFailure(err)
	}
	l.pairing = &pairRun{p: p}
	if err := pairing.Accept(l.Link, theirs, run); err != nil {
		le, local := errorsAs[*pairing.LocalError](err)
		if local {
			err = pairingFailure(le.Err)
		} else {
			err = l.handshakeErr(err)
		}
		p.failed(err)
		if !local {
			// The dialer closed or the connection broke: nothing to
			// refuse (and a refusal over QUIC would wait for the dialer).
			l.Drop()
		}
		return nil, err
	}
	n.pair.pins.Pin(run.Peer())
	l.pairing.peer = run.Peer()
	return l.readHello()
}

// pairingReason is the close reason for a pairing failure: the sentinel's
// text (which pairingClosed maps back) or the error's own.
func pairingReason(err error) string {
	for _, s := range pairingSentinels {
		if errors.Is(err, s) {
			return strings.TrimPrefix(s.Error(), "nearnet: ")
		}
	}
	if pe, ok := errorsAs[*PairingError](err); ok {
		return pe.Reason
	}
	return strings.TrimPrefix(err.Error(), "security: pairing: ")
}

// pairDone finishes a paired link once the peer's hello is checked: the
// peer's identity goes into Config.KnownPeersFile, if set, under the name
// in its hello, and the Pairing has its peer. It does nothing for a link
// that did not pair.
func (n *Node) pairDone(l *link) error {
	r := l.pairing
	if r == nil {
		return nil
	}
	if f := n.cfg.KnownPeersFile; f != "" {
		kp, err := security.LoadKnownPeers(f)
		if err == nil {
			err = kp.Replace(r.peer, l.peer.Name)
		}
		if err != nil {
			return &PairingError{Reason: "pinning the paired peer in Config.KnownPeersFile: " + strings.TrimPrefix(err.Error(), "security: ")}
		}
	}
	r.p.s.Paired(l.peer)
	return nil
}

// advertTargets returns the addresses ("host:port") an advert offers and
// the transports to reach them by.
func advertTargets(a Advert) (addrs, offered []string, err error) {
	if a.ID.IsZero() {
		return nil, nil, fmt.Errorf("nearnet: %q is not a nearnet peer (no peer ID in its TXT record)", a.Name)
	}
	addrs = make([]string, 0, len(a.Addrs))
	for _, ip := range a.Addrs {
		addrs = append(addrs, net.JoinHostPort(ip.String(), strconv.Itoa(a.Port)))
	}
	if len(addrs) == 0 {
		return nil, nil, fmt.Errorf("nearnet: %q advertises no address", a.Name)
	}
	offered = a.Transports
	if len(offered) == 0 {
		// No "tr" entry: the transport the service type names.
		offered = []string{"ws"}
		if strings.HasSuffix(a.Service, "._udp") {
			offered = []string{"quic"}
		}
	}
	return addrs, offered, nil
}
