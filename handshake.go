package nearnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	linkpkg "github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport"
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

// deadlineFor bounds a handshake by ctx and HandshakeTimeout.
func (n *Node) deadlineFor(ctx context.Context) time.Time {
	d := time.Now().Add(n.cfg.HandshakeTimeout)
	if t, ok := ctx.Deadline(); ok && t.Before(d) {
		d = t
	}
	return d
}

// clientHandshake runs the dialer's side of the link handshake over l,
// whose transport (and TLS, described by cs; nil without) is up: the
// trust check, the upgrade request with the hello behind it, the
// listener's answer and hello. It is the same over TCP and over a QUIC
// control stream. On failure l's transport is closed and the stage named.
func (n *Node) clientHandshake(l *link, addr string, cs *tls.ConnectionState) (stage string, err error) {
	if err := n.checkPeerCert(cs); err != nil {
		// Tell the listener why before leaving: a close frame may follow
		// the upgrade request without waiting for the 101.
		l.SendUpgrade(addr, nil)
		reject := &RejectedError{Code: wire.CloseUntrusted, Reason: "the dialer does not trust this listener's identity " + certFingerprint(cs).String()}
		l.sendCloseNow(reject)
		l.drop(reject)
		return "tls", err
	}
	hello, err := n.hello(l, cs, true)
	if err != nil {
		l.drop(nil)
		return "hello", err
	}
	if err := l.SendUpgrade(addr, hello); err != nil { // the hello pipelined behind the request
		l.drop(nil)
		return "upgrade", err
	}
	if err := l.ReadUpgradeResponse(); err != nil {
		l.drop(nil)
		return "upgrade", explainTLSAlert(err, n)
	}
	h, err := l.readHello()
	if err != nil {
		l.drop(nil)
		return "hello", explainTLSAlert(err, n)
	}
	if err := n.checkHello(l, h, cs, false); err != nil {
		l.sendCloseNow(err)
		l.drop(err)
		return "hello", err
	}
	if err := l.setStreamKey(cs); err != nil {
		l.drop(nil)
		return "hello", err
	}
	l.startFlow()
	return "", nil
}

// drop closes l's transport during the handshake: after a refusal (err
// set, its close frame written) so that the frame reaches the peer first,
// otherwise at once.
func (l *link) drop(err error) {
	if err != nil {
		l.Refuse(closeCodeFor(err))
		return
	}
	l.Drop()
}

// isRejection reports a permanent failure, which trying again (another
// address, the other transport, a retry) would only repeat: the peer
// refused us, we refuse its identity, or the proxy refused our credentials.
func isRejection(err error) bool {
	_, ok := errorsAs[*RejectedError](err)
	_, untrusted := errorsAs[*security.UntrustedPeerError](err)
	pe, viaProxy := errorsAs[*proxy.Error](err)
	return ok || untrusted || errors.Is(err, ErrKeyMismatch) || viaProxy && (pe.Kind == proxy.AuthRequired || pe.Kind == proxy.AuthFailed)
}

// explainTLSAlert turns the terse "remote error: tls: bad certificate" a
// TLS 1.3 client sees after the server refused its certificate into advice.
func explainTLSAlert(err error, n *Node) error {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil && ne.Err.Error() == "remote error: tls: bad certificate" {
		return &RejectedError{Code: wire.CloseUntrusted, Reason: fmt.Sprintf("the peer does not trust this node's identity %v", n.Fingerprint())}
	}
	return err
}

// readHello reads the peer's first message, which must be a hello (or a
// close frame explaining why not, which becomes the error it means).
func (l *link) readHello() (*wire.Hello, error) {
	h, err := l.ReadHello()
	if cf, ok := errorsAs[*linkpkg.CloseFrameError](err); ok {
		return nil, closeErrorFor(cf.Code, cf.Reason)
	}
	if err != nil {
		return nil, fromTransport(err)
	}
	return h, nil
}

// hello encodes this node's hello for link l, with the PSK proof when a
// key is set and the datagram offer unless datagrams are off.
func (n *Node) hello(l *link, cs *tls.ConnectionState, client bool) ([]byte, error) {
	h := wire.Hello{Version: 1, Peer: n.id.String(), Name: n.Name(), Meta: n.cfg.Metadata, Boot: n.boot}
	l.t.OfferDatagrams(&h)
	n.offerICE(&h)
	h.Resume = n.resumeOffer(l)
	l.myResume = h.Resume
	if n.cfg.Key != nil && cs != nil {
		p, err := security.Proof(*n.cfg.Key, cs, client)
		if err != nil {
			return nil, err
		}
		h.Proof = p
	}
	return wire.AppendHello(nil, &h)
}

// checkPeerCert applies the pinned or PKI trust rules to the peer's
// certificate. It is not done inside crypto/tls so that a refused peer
// learns why in a close frame rather than from a bare TLS alert.
func (n *Node) checkPeerCert(cs *tls.ConnectionState) error {
	if cs == nil || n.verify == nil {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return &RejectedError{Code: wire.CloseUntrusted, Reason: "peer presented no certificate"}
	}
	return n.verify(cs.PeerCertificates[0])
}

// checkHello validates the peer's hello: identity, proof, and not ourselves.
func (n *Node) checkHello(l *link, h *wire.Hello, cs *tls.ConnectionState, fromClient bool) error {
	id, err := ParsePeerID(h.Peer)
	if err != nil {
		return &wire.HelloError{What: err.Error()}
	}
	if id == n.id {
		return &wire.HelloError{What: "the peer has this node's own peer ID (connected to itself?)"}
	}
	if !fromClient {
		if err := h.CheckAnswer(); err != nil {
			return err
		}
	}
	if n.cfg.Key != nil && cs != nil {
		if err := security.VerifyProof(*n.cfg.Key, cs, fromClient, h.Proof); err != nil {
			return err
		}
	}
	l.peer = Peer{ID: id, Name: h.Name, Meta: h.Meta, Addr: l.t.RemoteAddr(), Version: min(h.Version, wire.Version), Fingerprint: certFingerprint(cs)}
	l.peerBoot, l.peerResume = h.Boot, h.Resume
	l.hello = h
	return nil
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

// sendCloseNow writes a close frame explaining err, during the handshake
// (before the writer goroutine exists).
func (l *link) sendCloseNow(err error) { l.SendCloseNow(closeCodeFor(err)) }

// acceptLink runs the listener side of the link handshake on c, an
// accepted connection. A connection that carries a stream (its first bytes
// are the stream magic) is handed to the stream's Conn: acceptLink then
// returns neither link nor error.
func (n *Node) acceptLink(ctx context.Context, c transport.Conn) (*link, error) {
	herr := func(stage string, err error) error {
		return &HandshakeError{Addr: c.RemoteAddr().String(), Incoming: true, Stage: stage, Err: err}
	}
	l := newLink(n, c, writeThroughOf(c), false)
	l.SetDeadline(n.deadlineFor(ctx))
	if magic, err := l.Reader().Peek(len(wire.StreamMagic)); err == nil && string(magic) == wire.StreamMagic {
		st, ok := c.AsStream()
		if !ok {
			l.drop(nil)
			return nil, herr("stream", errors.New("a stream where this transport carries none"))
		}
		if err := n.acceptStream(st, l.Reader()); err != nil {
			return nil, herr("stream", err)
		}
		return nil, nil
	}
	if stage, err := n.serverHandshake(ctx, l, c.TLS()); err != nil {
		return nil, herr(stage, err)
	}
	l.SetDeadline(time.Time{})
	return l, nil
}

// serverHandshake runs the listener's side of the link handshake over l,
// whose transport (and TLS, described by cs; nil without) is up: the
// upgrade, the dialer's hello and the checks on it, admission, our hello.
// It is the same over TCP and over a QUIC control stream. On failure l's
// transport is closed (after a close frame saying why, for a refusal).
func (n *Node) serverHandshake(ctx context.Context, l *link, cs *tls.ConnectionState) (stage string, err error) {
	if err := l.AcceptUpgrade(); err != nil {
		l.drop(nil)
		return "upgrade", err
	}
	refuse := func(stage string, err error) (string, error) {
		// A close frame that says why, so the dialer gets a reason and
		// not a reset.
		l.sendCloseNow(err)
		l.drop(err)
		return stage, err
	}
	h, err := l.readHello()
	if err != nil {
		if isTimeout(err) {
			err = &wire.HelloError{What: "no hello within the handshake timeout"}
		}
		_, bad := errorsAs[*wire.HelloError](err)
		if _, proto := errorsAs[*wire.ProtocolError](err); bad || proto {
			return refuse("hello", err)
		}
		l.drop(nil)
		return "hello", err
	}
	if err := n.checkPeerCert(cs); err != nil {
		return refuse("tls", err)
	}
	if err := n.checkHello(l, h, cs, true); err != nil {
		return refuse("hello", err)
	}
	if n.cfg.Admit != nil {
		if err := n.cfg.Admit(ctx, l.peer); err != nil {
			return refuse("admission", &RejectedError{Code: wire.CloseRejected, Reason: err.Error()})
		}
	}
	hello, err := n.hello(l, cs, false)
	if err == nil {
		err = l.setStreamKey(cs)
	}
	if err != nil {
		l.drop(nil)
		return "hello", err
	}
	if err := l.SendHello(hello); err != nil {
		l.drop(nil)
		return "hello", err
	}
	l.startFlow()
	return "", nil
}

// verifierFor returns the certificate check for the configured mode, or
// nil if certificates are not checked (PSK: the proof authenticates).
func verifierFor(cfg *Config) (func(*x509.Certificate) error, error) {
	var pins []func(*x509.Certificate) error
	if len(cfg.Trust) > 0 {
		pins = append(pins, security.PinVerifier(cfg.Trust...))
	}
	if cfg.KnownPeersFile != "" {
		kp, err := security.LoadKnownPeers(cfg.KnownPeersFile)
		if err != nil {
			return nil, &ConfigError{Field: "Config.KnownPeersFile", Value: cfg.KnownPeersFile, Reason: err.Error()}
		}
		pins = append(pins, security.KnownPeersVerifier(kp, cfg.TrustOnFirstUse))
	}
	if cfg.Roots != nil {
		pins = append(pins, security.RootsVerifier(cfg.Roots))
	}
	switch len(pins) {
	case 0:
		return nil, nil
	case 1:
		return pins[0], nil
	}
	// Trust and a known-peers file: either one vouching is enough.
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

func certFingerprint(cs *tls.ConnectionState) security.Fingerprint {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return security.Fingerprint{}
	}
	return security.FingerprintOf(cs.PeerCertificates[0])
}
