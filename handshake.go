package nearnet

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/proxy"
	"github.com/nearnet/nearnet/security"
)

// Peer describes the remote side of a connection as its hello and TLS
// handshake established it.
type Peer struct {
	ID          PeerID
	Name        string
	Meta        map[string]string
	Fingerprint security.Fingerprint // zero with SecurityNone
	Addr        net.Addr             // remote address of the connection
	Version     int                  // protocol version in use: the lower of the peer's hello and this node's
}

// HandshakeError reports a failed connection attempt before the peer was
// established, with the stage it failed in.
type HandshakeError struct {
	Addr     string // the address dialed or accepted from
	Incoming bool   // accepted by this node's listener, not dialed
	Stage    string // "tcp", "tls", "upgrade", "hello", "admission"
	Err      error
}

func (e *HandshakeError) Error() string {
	verb := "connecting to"
	if e.Incoming {
		verb = "accepting from"
	}
	return fmt.Sprintf("nearnet: %s %s: %s: %v", verb, e.Addr, e.Stage, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// isRejection reports a permanent failure, which trying again (another
// address, the other transport, a retry) would only repeat: the peer
// refused us, we refuse its identity, or the proxy refused our credentials.
func isRejection(err error) bool {
	_, ok := errorsAs[*RejectedError](err)
	_, untrusted := errorsAs[*security.UntrustedPeerError](err)
	pe, viaProxy := errorsAs[*proxy.Error](err)
	_, pairing := errorsAs[*PairingError](err)
	return ok || untrusted || pairing || errors.Is(err, ErrKeyMismatch) || viaProxy && (pe.Kind == proxy.AuthRequired || pe.Kind == proxy.AuthFailed)
}

// closeCodeFor picks the close code that tells the peer why we refuse it.
func closeCodeFor(err error) (int, string) {
	switch {
	case errors.Is(err, security.ErrNoProof):
		return wire.CloseKeyMismatch, security.ErrNoProof.Error()
	case errors.Is(err, ErrKeyMismatch):
		return wire.CloseKeyMismatch, "pre-shared key mismatch: the peer proved a different key"
	}
	if r, ok := errorsAs[*RejectedError](err); ok {
		return r.Code, r.Reason
	}
	if _, ok := errorsAs[*PairingError](err); ok {
		return wire.ClosePairingFailed, pairingReason(err)
	}
	if u, ok := errorsAs[*security.UntrustedPeerError](err); ok {
		return wire.CloseUntrusted, u.Error()
	}
	if h, ok := errorsAs[*wire.HelloError](err); ok {
		return wire.CloseBadHello, h.What
	}
	if p, ok := errorsAs[*wire.ProtocolError](err); ok {
		return wire.CloseProtocolError, p.What
	}
	return wire.CloseProtocolError, err.Error()
}

// handshaker is the node's side of the link handshake (session.Handshaker).
func (n *Node) handshaker() session.Handshaker {
	return session.Handshaker{
		ID: n.id, Name: n.Name, Meta: n.cfg.Metadata, Boot: n.boot, Key: n.cfg.Key, Verify: n.verify,
		Admit: func(ctx context.Context, p session.Peer) error {
			if n.cfg.Admit == nil {
				return nil
			}
			return n.cfg.Admit(ctx, publicPeer(p))
		},
		Resume:        n.resumeOffer,
		Rejected:      func(code int, reason string) error { return &RejectedError{Code: code, Reason: reason} },
		CloseCode:     closeCodeFor,
		PeerClose:     closeErrorFor,
		FromTransport: fromTransport,
		Pair:          n.pairer(),
		Distrusted: func(err error) error {
			if session.TLSAlertBadCertificate(err) {
				return &RejectedError{Code: wire.CloseUntrusted, Reason: fmt.Sprintf("the peer does not trust this node's identity %v", n.Fingerprint())}
			}
			return nil
		},
	}
}

// sendCloseNow writes a close frame explaining err during the handshake.
func sendCloseNow(l *link, err error) { l.SendCloseNow(closeCodeFor(err)) }
