package session

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/stream"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// Handshaker runs the link handshake of a node's paths: the trust check
// of the peer's certificate, the upgrade, the hellos both ways with their
// proofs and checks, and admission. It is the same over every transport.
// The node fills every field; the error functions make the API's errors.
type Handshaker struct {
	ID     [16]byte
	Name   func() string // the instance name, which discovery may change
	Meta   map[string]string
	Boot   string
	Key    *security.Key                 // PSK proofs; nil: none
	Verify func(*x509.Certificate) error // the pinned or PKI check; nil: none
	Admit  func(ctx context.Context, p Peer) error
	Resume func(l *Path) *wire.Resume // the resume offer for l's hello
	Caps   []string                   // capabilities offered beyond the transport's (the hello's caps)

	Rejected  func(code int, reason string) error // the API's *RejectedError
	CloseCode func(err error) (int, string)       // the close code that tells the peer why we refuse it
	PeerClose func(code int, reason string) error // what a close code the peer sent means
	// FromTransport maps the peer's close as a transport reports it.
	FromTransport func(err error) error
	// Distrusted is the error a dialer sees when the listener refused its
	// certificate (a TLS alert), or nil for any other error.
	Distrusted func(err error) error

	// Pair runs pairing by a short code in the handshake; nil: none.
	Pair Pairer
}

// Pairer runs pairing by a short code (PROTOCOL.md section 16) in the
// link handshake, between the upgrade and the hellos; the node implements
// it. The PAKE replaces the dialer's trust check; a paired peer is pinned
// before the hellos, whose checks then pass.
type Pairer interface {
	// Dial runs the dialer's exchange on l, whose Pairing is set, up to
	// the upgrade (sent) and a pinned peer; on failure it has closed l as
	// the failure needs.
	Dial(l *Path, addr string, cs *tls.ConnectionState) error
	// Accept runs the listener's exchange on l, whose dialer's first
	// message (after the upgrade) was first, setting l.Pairing; an error
	// is to be refused with a close frame.
	Accept(l *Path, cs *tls.ConnectionState, first []byte) error
	// Done finishes a paired link once the peer's hello is checked.
	Done(l *Path) error
}

// Client runs the dialer's side of the link handshake over l, whose
// transport (and TLS, described by cs; nil without) is up. On failure l's
// transport is closed and the stage named.
func (h *Handshaker) Client(l *Path, addr string, cs *tls.ConnectionState) (stage string, err error) {
	if l.Pairing != nil {
		return h.pairClient(l, addr, cs)
	}
	if err := h.checkPeerCert(cs); err != nil {
		// Tell the listener why before leaving: a close frame may follow
		// the upgrade request without waiting for the 101.
		l.SendUpgrade(addr, nil)
		reject := h.Rejected(wire.CloseUntrusted, "the dialer does not trust this listener's identity "+CertFingerprint(cs).String())
		h.SendCloseNow(l, reject)
		h.Drop(l, reject)
		return "tls", err
	}
	hello, err := h.hello(l, cs, true)
	if err != nil {
		h.Drop(l, nil)
		return "hello", err
	}
	if err := l.SendUpgrade(addr, hello); err != nil { // the hello pipelined behind the request
		h.Drop(l, nil)
		return "upgrade", err
	}
	if err := l.ReadUpgradeResponse(); err != nil {
		h.Drop(l, nil)
		return "upgrade", h.explain(err)
	}
	hp, err := h.readHello(l)
	if err != nil {
		h.Drop(l, nil)
		return "hello", h.explain(err)
	}
	if err := h.checkHello(l, hp, cs, false); err != nil {
		h.SendCloseNow(l, err)
		h.Drop(l, err)
		return "hello", err
	}
	if err := setStreamKey(l, cs); err != nil {
		h.Drop(l, nil)
		return "hello", err
	}
	return "", nil
}

// Server runs the listener's side of the link handshake over l: the
// upgrade, the dialer's hello and the checks on it, admission, our hello.
// On failure l's transport is closed (after a close frame saying why, for
// a refusal).
func (h *Handshaker) Server(ctx context.Context, l *Path, cs *tls.ConnectionState) (stage string, err error) {
	if err := l.AcceptUpgrade(); err != nil {
		h.Drop(l, nil)
		return "upgrade", err
	}
	refuse := func(stage string, err error) (string, error) {
		// A close frame that says why, so the dialer gets a reason and
		// not a reset.
		h.SendCloseNow(l, err)
		h.Drop(l, err)
		return stage, err
	}
	hp, first, err := h.readFirst(l)
	if err == nil && first != nil {
		if h.Pair == nil {
			return refuse("pairing", &wire.HelloError{What: "a pairing message to a node that does not pair"})
		}
		if err := h.Pair.Accept(l, cs, first); err != nil {
			return refuse("pairing", err)
		}
		hp, err = h.readHello(l)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = &wire.HelloError{What: "no hello within the handshake timeout"}
		}
		var he *wire.HelloError
		var pe *wire.ProtocolError
		if errors.As(err, &he) || errors.As(err, &pe) {
			return refuse("hello", err)
		}
		h.Drop(l, nil)
		return "hello", err
	}
	if err := h.checkPeerCert(cs); err != nil {
		return refuse("tls", err)
	}
	if err := h.checkHello(l, hp, cs, true); err != nil {
		return refuse("hello", err)
	}
	if l.Pairing != nil {
		if err := h.Pair.Done(l); err != nil {
			return refuse("pairing", err)
		}
	}
	if h.Admit != nil {
		if err := h.Admit(ctx, l.Peer); err != nil {
			return refuse("admission", h.Rejected(wire.CloseRejected, err.Error()))
		}
	}
	hello, err := h.hello(l, cs, false)
	if err == nil {
		err = setStreamKey(l, cs)
	}
	if err != nil {
		h.Drop(l, nil)
		return "hello", err
	}
	if err := l.SendHello(hello); err != nil {
		h.Drop(l, nil)
		return "hello", err
	}
	return "", nil
}

// Drop closes l's transport during the handshake: after a refusal (err
// set, its close frame written) so that the frame reaches the peer first,
// otherwise at once.
func (h *Handshaker) Drop(l *Path, err error) {
	if err != nil {
		l.Refuse(h.CloseCode(err))
		return
	}
	l.Link.Drop()
}

// SendCloseNow writes a close frame explaining err, during the handshake
// (before the writer goroutine exists).
func (h *Handshaker) SendCloseNow(l *Path, err error) { l.Link.SendCloseNow(h.CloseCode(err)) }

// explain turns the terse TLS alert a client sees after the server refused
// its certificate into advice.
func (h *Handshaker) explain(err error) error {
	if d := h.Distrusted(err); d != nil {
		return d
	}
	return err
}

// pairClient is Client for a dialed link that pairs (Pairer.Dial), then,
// paired, the hellos.
func (h *Handshaker) pairClient(l *Path, addr string, cs *tls.ConnectionState) (stage string, err error) {
	if err := h.Pair.Dial(l, addr, cs); err != nil {
		return "pairing", err
	}
	hello, err := h.hello(l, cs, true)
	if err == nil {
		err = l.SendHandshake(hello)
	}
	if err != nil {
		h.Drop(l, nil)
		return "hello", err
	}
	hp, err := h.readHello(l)
	if err != nil {
		h.Drop(l, nil)
		return "hello", err
	}
	if err := h.checkHello(l, hp, cs, false); err != nil {
		h.SendCloseNow(l, err)
		h.Drop(l, err)
		return "hello", err
	}
	if err := h.Pair.Done(l); err != nil {
		h.Drop(l, nil)
		return "pairing", err
	}
	if err := setStreamKey(l, cs); err != nil {
		h.Drop(l, nil)
		return "hello", err
	}
	return "", nil
}

// readFirst reads the peer's first message after the upgrade: a hello, or
// a pairing message (returned as first), or a close frame, which becomes
// the error it means.
func (h *Handshaker) readFirst(l *Path) (*wire.Hello, []byte, error) {
	hp, first, err := l.ReadFirst()
	var cf *link.CloseFrameError
	if errors.As(err, &cf) {
		return nil, nil, h.PeerClose(cf.Code, cf.Reason)
	}
	if err != nil {
		return nil, nil, h.FromTransport(err)
	}
	return hp, first, nil
}

// readHello reads the peer's first message, which must be a hello (or a
// close frame explaining why not, which becomes the error it means).
func (h *Handshaker) readHello(l *Path) (*wire.Hello, error) {
	hp, err := l.ReadHello()
	var cf *link.CloseFrameError
	if errors.As(err, &cf) {
		return nil, h.PeerClose(cf.Code, cf.Reason)
	}
	if err != nil {
		return nil, h.FromTransport(err)
	}
	return hp, nil
}

// hello encodes this node's hello for link l, with the PSK proof when a
// key is set and the datagram offer unless datagrams are off.
func (h *Handshaker) hello(l *Path, cs *tls.ConnectionState, client bool) ([]byte, error) {
	hw := wire.Hello{Version: 1, Peer: hex.EncodeToString(h.ID[:]), Name: h.Name(), Meta: h.Meta, Boot: h.Boot}
	l.T.OfferDatagrams(&hw)
	hw.Caps = append(hw.Caps, h.Caps...)
	hw.Resume = h.Resume(l)
	l.MyResume = hw.Resume
	if h.Key != nil && cs != nil {
		p, err := security.Proof(*h.Key, cs, client)
		if err != nil {
			return nil, err
		}
		hw.Proof = p
	}
	return wire.AppendHello(nil, &hw)
}

// checkPeerCert applies the pinned or PKI trust rules to the peer's
// certificate. It is not done inside crypto/tls so that a refused peer
// learns why in a close frame rather than from a bare TLS alert.
func (h *Handshaker) checkPeerCert(cs *tls.ConnectionState) error {
	if cs == nil || h.Verify == nil {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return h.Rejected(wire.CloseUntrusted, "peer presented no certificate")
	}
	return h.Verify(cs.PeerCertificates[0])
}

// checkHello validates the peer's hello: identity, proof, and not
// ourselves; it fills l's peer and resume fields.
func (h *Handshaker) checkHello(l *Path, hp *wire.Hello, cs *tls.ConnectionState, fromClient bool) error {
	var id [16]byte
	if len(hp.Peer) != 32 {
		return &wire.HelloError{What: fmt.Sprintf("nearnet: peer ID %q: want 32 hex digits, got %d characters", hp.Peer, len(hp.Peer))}
	}
	if _, err := hex.Decode(id[:], []byte(hp.Peer)); err != nil {
		return &wire.HelloError{What: fmt.Sprintf("nearnet: peer ID %q: not hex", hp.Peer)}
	}
	if id == h.ID {
		return &wire.HelloError{What: "the peer has this node's own peer ID (connected to itself?)"}
	}
	if !fromClient {
		if err := hp.CheckAnswer(); err != nil {
			return err
		}
	}
	if h.Key != nil && cs != nil {
		if err := security.VerifyProof(*h.Key, cs, fromClient, hp.Proof); err != nil {
			return err
		}
	}
	l.Peer = Peer{ID: id, Name: hp.Name, Meta: hp.Meta, Addr: l.T.RemoteAddr(), Version: min(hp.Version, wire.Version), Fingerprint: CertFingerprint(cs)}
	l.PeerBoot, l.PeerResume = hp.Boot, hp.Resume
	l.Hello = hp
	return nil
}

// CertFingerprint is the fingerprint of the peer's certificate in cs, zero
// without one.
func CertFingerprint(cs *tls.ConnectionState) security.Fingerprint {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return security.Fingerprint{}
	}
	return security.FingerprintOf(cs.PeerCertificates[0])
}

// TLSAlertBadCertificate reports the alert a TLS 1.3 client sees after the
// server refused its certificate.
func TLSAlertBadCertificate(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && ne.Err != nil && ne.Err.Error() == "remote error: tls: bad certificate"
}

// setStreamKey derives l's stream key and handle (stream.Keys).
func setStreamKey(l *Path, cs *tls.ConnectionState) (err error) {
	l.StreamKey, l.Handle, err = stream.Keys(l.Key(), cs)
	return err
}
