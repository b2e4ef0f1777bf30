package security

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudflare/circl/group"
)

// Pairing by a short code: CPace (cpace.go) over a [PairingCode], bound to
// the TLS session and to both peers' fingerprints, with key confirmation.
// PROTOCOL.md section 16 specifies the exchange.

const (
	// pairingExporterLabel is the TLS exporter label of CPace's sid.
	pairingExporterLabel = "EXPORTER-nearnet-pairing"
	// pairingCILabel starts CPace's channel identifier; it names the
	// protocol and its version.
	pairingCILabel = "nearnet-pairing-v1"
	// The associated data of each role's CPace message.
	pairingADAnswer = "answer"
	pairingADOffer  = "offer"
)

// DefaultPairingAttempts is how many attempts an [Offer] allows unless
// [OfferConfig.MaxAttempts] says otherwise: enough for the person typing to
// mistype twice, while an attacker's chance with a six-digit code stays at
// 3 in a million.
const DefaultPairingAttempts = 3

// DefaultPairingLifetime is how long an [Offer] accepts its code unless
// [OfferConfig.Lifetime] says otherwise: time to walk to the other machine
// and type it, short enough that a code left on a screen soon stops working.
const DefaultPairingLifetime = 5 * time.Minute

// OfferConfig sets the limits of an [Offer]. The zero value (or a nil
// *OfferConfig) gives the defaults.
type OfferConfig struct {
	// MaxAttempts is how many runs may use the code: each run that reaches
	// [Pairing.Receive] counts, whether it then succeeds, fails or is
	// abandoned, because from that point it gives whoever is on the other end
	// one guess. If zero, [DefaultPairingAttempts]; at most 10.
	MaxAttempts int
	// Lifetime is how long after [NewOffer] a run may reach
	// [Pairing.Receive]. If zero, [DefaultPairingLifetime]; at most an hour.
	Lifetime time.Duration
}

// Offer is the side that shows a code. It starts one [Pairing] per
// connection and counts their attempts against its limits; it pairs at most
// one peer. The code appears in none of its output.
//
// An Offer is safe for concurrent use by multiple goroutines (one per
// incoming connection).
type Offer struct {
	code        PairingCode
	maxAttempts int
	expires     time.Time
	now         func() time.Time // time.Now; tests replace it

	mu       sync.Mutex // guards attempts and paired
	attempts int        // runs that reached Receive
	paired   bool       // a run has confirmed
}

// NewOffer returns an offer of code, with the limits in cfg (nil means the
// defaults). The lifetime starts now.
func NewOffer(code PairingCode, cfg *OfferConfig) (*Offer, error) {
	if code.IsZero() {
		return nil, errors.New("security: NewOffer: the pairing code is unset; make one with NewPairingCode")
	}
	var c OfferConfig
	if cfg != nil {
		c = *cfg
	}
	switch {
	case c.MaxAttempts == 0:
		c.MaxAttempts = DefaultPairingAttempts
	case c.MaxAttempts < 0 || c.MaxAttempts > 10:
		return nil, fmt.Errorf("security: OfferConfig.MaxAttempts is %d; allowed: 1 to 10, or 0 for %d", c.MaxAttempts, DefaultPairingAttempts)
	}
	switch {
	case c.Lifetime == 0:
		c.Lifetime = DefaultPairingLifetime
	case c.Lifetime < 0 || c.Lifetime > time.Hour:
		return nil, fmt.Errorf("security: OfferConfig.Lifetime is %v; allowed: up to 1h, or 0 for %v", c.Lifetime, DefaultPairingLifetime)
	}
	return &Offer{code: code, maxAttempts: c.MaxAttempts, expires: time.Now().Add(c.Lifetime), now: time.Now}, nil
}

// Code returns the code to show.
func (o *Offer) Code() PairingCode { return o.code }

// Expires returns when the offer stops accepting runs.
func (o *Offer) Expires() time.Time { return o.expires }

// String describes the offer's state without its code.
func (o *Offer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("pairing offer: %d of %d attempts used, paired %t, expires %s",
		o.attempts, o.maxAttempts, o.paired, o.expires.Format(time.RFC3339))
}

// usable reports why the offer accepts no more runs, or nil. o.mu must be held.
func (o *Offer) usable() error {
	switch {
	case o.paired || o.attempts >= o.maxAttempts:
		return ErrPairingCodeUsedUp
	case !o.now().Before(o.expires):
		return ErrPairingCodeExpired
	}
	return nil
}

// reserve counts one attempt, or says why there can be none.
func (o *Offer) reserve() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.usable(); err != nil {
		return err
	}
	o.attempts++
	return nil
}

// complete records a confirmed run. A second confirmed run (two peers that
// both know the code) is refused: an offer pairs one peer.
func (o *Offer) complete() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.paired {
		return ErrPairingCodeUsedUp
	}
	o.paired = true
	return nil
}

// Start begins a run of the offer over a TLS connection: cs is its state
// after a completed TLS 1.3 handshake, local the fingerprint of the identity
// this side presented in it. It returns [ErrPairingCodeExpired] or
// [ErrPairingCodeUsedUp] if the offer accepts no more runs; tell the peer so
// rather than leave it waiting.
func (o *Offer) Start(cs *tls.ConnectionState, local Fingerprint) (*Pairing, error) {
	o.mu.Lock()
	err := o.usable()
	o.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sid, peer, err := pairingChannel(cs)
	if err != nil {
		return nil, err
	}
	return newPairing(o.code, o, sid, peer, local, cpaceSampleScalar()), nil
}

// StartAnswer begins a run of the answering side, the one that typed code,
// over a TLS connection: cs is its state after a completed TLS 1.3
// handshake, local the fingerprint of the identity this side presented in
// it.
//
// Every run gives the peer one guess at the code, so try it with few peers
// (the ones a user could mean), not every one discovery finds.
func StartAnswer(code PairingCode, cs *tls.ConnectionState, local Fingerprint) (*Pairing, error) {
	if code.IsZero() {
		return nil, errors.New("security: StartAnswer: the pairing code is unset")
	}
	sid, peer, err := pairingChannel(cs)
	if err != nil {
		return nil, err
	}
	return newPairing(code, nil, sid, local, peer, cpaceSampleScalar()), nil
}

// pairingChannel returns CPace's sid (the TLS exporter) and the peer's
// fingerprint from a TLS connection.
func pairingChannel(cs *tls.ConnectionState) (sid []byte, peer Fingerprint, err error) {
	if cs == nil || !cs.HandshakeComplete {
		return nil, Fingerprint{}, errors.New("security: pairing needs a completed TLS handshake")
	}
	if cs.Version != tls.VersionTLS13 {
		return nil, Fingerprint{}, fmt.Errorf("security: pairing needs TLS 1.3, the connection uses %s", tls.VersionName(cs.Version))
	}
	if len(cs.PeerCertificates) == 0 {
		return nil, Fingerprint{}, errors.New("security: pairing needs the peer's certificate; the peer presented none")
	}
	sid, err = cs.ExportKeyingMaterial(pairingExporterLabel, nil, 32)
	if err != nil {
		return nil, Fingerprint{}, fmt.Errorf("security: exporting keying material for pairing: %w", err)
	}
	return sid, FingerprintOf(cs.PeerCertificates[0]), nil
}

// Pairing is one run of the pairing exchange over one connection, on either
// side. Each side:
//
//  1. sends [Pairing.Message] to the peer;
//  2. passes the peer's message to [Pairing.Receive] and sends the
//     confirmation tag it returns;
//  3. passes the peer's tag to [Pairing.Confirm]. Only when it returns nil
//     is the peer the one that knows the code: pin [Pairing.Peer].
//
// Neither side waits for the other's verdict, so a wrong code fails on both
// at once, each with [ErrPairingCodeMismatch]. The two messages (and the two
// tags) may cross on the wire. A Pairing is used once, by one goroutine.
type Pairing struct {
	offer   *Offer // nil on the answering side
	peer    Fingerprint
	sid     []byte
	y       group.Scalar // this side's CPace scalar; nil after Receive
	msg     []byte       // this side's CPace message
	peerTag []byte       // the tag the peer must send; set by Receive
	state   pairingState
}

type pairingState int

const (
	pairingStarted pairingState = iota
	pairingReceived
	pairingDone   // confirmed
	pairingFailed // Receive or Confirm failed
)

// newPairing sets up a run with scalar y. offer is nil on the answering
// side; answerFP and offerFP are the two sides' fingerprints by role.
func newPairing(code PairingCode, offer *Offer, sid []byte, answerFP, offerFP Fingerprint, y group.Scalar) *Pairing {
	p := &Pairing{offer: offer, sid: sid, y: y}
	ad := pairingADAnswer
	p.peer = offerFP
	if offer != nil {
		ad = pairingADOffer
		p.peer = answerFP
	}
	g := cpaceGenerator(code.prs(), pairingCI(answerFP, offerFP), sid)
	p.msg = encodePairingMessage(cpaceScalarMult(y, g), []byte(ad))
	return p
}

// pairingCI is CPace's channel identifier: the protocol label and both
// fingerprints, the initiator's (the answering side's) first.
func pairingCI(answer, offer Fingerprint) []byte {
	return lvCat([]byte(pairingCILabel), answer[:], offer[:])
}

// Peer returns the fingerprint of the peer's certificate in this TLS
// connection; trust it only after [Pairing.Confirm] returned nil.
func (p *Pairing) Peer() Fingerprint { return p.peer }

// String describes the run (role, peer, state) without the code.
func (p *Pairing) String() string {
	role := "answer"
	if p.offer != nil {
		role = "offer"
	}
	state := [...]string{"started", "message received", "confirmed", "failed"}[p.state]
	return fmt.Sprintf("pairing (%s side) with %s: %s", role, p.peer, state)
}

// Message returns this side's CPace message, to send to the peer.
func (p *Pairing) Message() []byte { return append([]byte(nil), p.msg...) }

// Receive takes the peer's CPace message and returns this side's
// confirmation tag, to send to the peer. On the offering side this is where
// an attempt is counted, so it returns [ErrPairingCodeExpired] or
// [ErrPairingCodeUsedUp] if the offer allows no more; it returns another
// error if the message is malformed or comes from a peer in the same role.
// After an error the Pairing is finished.
func (p *Pairing) Receive(peerMsg []byte) (tag []byte, err error) {
	if p.state != pairingStarted {
		return nil, errors.New("security: Pairing.Receive called twice or after a failure")
	}
	p.state = pairingFailed
	Y, ad, err := decodePairingMessage(peerMsg)
	if err != nil {
		return nil, err
	}
	ownAD, wantAD := pairingADAnswer, pairingADOffer
	if p.offer != nil {
		ownAD, wantAD = wantAD, ownAD
	}
	switch string(ad) {
	case wantAD:
	case ownAD:
		if p.offer != nil {
			return nil, errors.New("security: pairing: both sides show a code; one side must type the other's")
		}
		return nil, errors.New("security: pairing: both sides typed a code; one side must show the code and the other type it")
	default:
		return nil, fmt.Errorf("security: pairing: malformed message from the peer: unknown role %q", shorten(string(ad)))
	}
	if p.offer != nil {
		if err := p.offer.reserve(); err != nil {
			return nil, err
		}
	}
	k, err := cpaceScalarMultVfy(p.y, Y)
	p.y = nil
	if err != nil {
		return nil, fmt.Errorf("security: pairing: %w", err)
	}
	// The initiator A is the answering side, the responder B the offering side.
	ya, ada, yb, adb := Y, ad, p.msg[1:1+cpacePointLen], p.msg[2+cpacePointLen:]
	mine, theirs := p.msg, peerMsg
	if p.offer == nil {
		ya, ada, yb, adb = yb, adb, ya, ada
	}
	isk := cpaceISK(p.sid, k, ya, ada, yb, adb)
	key := pairingMACKey(p.sid, isk[:])
	p.peerTag = pairingTag(key, theirs)
	p.state = pairingReceived
	return pairingTag(key, mine), nil
}

// Confirm checks the peer's confirmation tag. It returns nil if the peer
// proved the same code over the same TLS session between the same two
// identities: the peer is [Pairing.Peer]. It returns
// [ErrPairingCodeMismatch] otherwise, and on the offering side
// [ErrPairingCodeUsedUp] if another run of the offer has already confirmed.
// The comparison takes constant time.
func (p *Pairing) Confirm(peerTag []byte) error {
	if p.state != pairingReceived {
		return errors.New("security: Pairing.Confirm called before Receive, twice or after a failure")
	}
	p.state = pairingFailed
	if !hmac.Equal(peerTag, p.peerTag) {
		return ErrPairingCodeMismatch
	}
	if p.offer != nil {
		if err := p.offer.complete(); err != nil {
			return err
		}
	}
	p.state = pairingDone
	return nil
}

// pairingMACKey is the draft's mac_key = H.hash(b"CPaceMac" || sid || ISK).
func pairingMACKey(sid, isk []byte) []byte {
	h := sha512.New()
	h.Write([]byte("CPaceMac"))
	h.Write(sid)
	h.Write(isk)
	return h.Sum(nil)
}

// pairingTag is the draft's confirmation tag MAC(mac_key, lv_cat(Y, AD)),
// with HMAC-SHA-512; lv_cat(Y, AD) is the CPace message as sent.
func pairingTag(key, msg []byte) []byte {
	m := hmac.New(sha512.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// encodePairingMessage is a CPace message on the wire: lv_cat(Y, AD).
func encodePairingMessage(y, ad []byte) []byte {
	return lvCat(y, ad)
}

// maxPairingAD bounds the associated data a message may carry, so that its
// length fits LEB128's one-byte form.
const maxPairingAD = 0x7f

// decodePairingMessage parses lv_cat(Y, AD): a 32-byte Y and up to 127
// bytes of AD, each preceded by its one-byte length, and nothing after.
func decodePairingMessage(b []byte) (y, ad []byte, err error) {
	fail := func(reason string) ([]byte, []byte, error) {
		return nil, nil, errors.New("security: pairing: malformed message from the peer: " + reason)
	}
	if len(b) < 2+cpacePointLen {
		return fail(fmt.Sprintf("%d bytes, want at least %d", len(b), 2+cpacePointLen))
	}
	if b[0] != cpacePointLen {
		return fail(fmt.Sprintf("share length byte is %#x, want %#x", b[0], cpacePointLen))
	}
	y, rest := b[1:1+cpacePointLen], b[1+cpacePointLen:]
	n := int(rest[0])
	if n > maxPairingAD {
		return fail("associated data longer than 127 bytes")
	}
	if len(rest)-1 != n {
		return fail(fmt.Sprintf("associated data length byte is %d, %d bytes follow", n, len(rest)-1))
	}
	return y, rest[1:], nil
}

// Err reports why the offer accepts no more runs ([ErrPairingCodeUsedUp]
// or [ErrPairingCodeExpired]), or nil while it still does.
func (o *Offer) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.usable()
}
