package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	qr "github.com/piglig/go-qr"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

// What pair, send --code and receive --code share: the node's
// configuration, the events, the QR code, finding the peer that pairs.

// txtPair is the TXT entry a node that pairs advertises: "offer" while it
// shows a code (nearnet pair), "answer" while it waits with a typed one
// (receive --code). It says only that: the code is never advertised.
const txtPair = "pair"

// pairingConfig builds a node configuration for pairing: SecurityPinned,
// trusting --known-peers and --trust if given (and recording the paired
// peer in --known-peers). A pre-shared key or --insecure contradicts it.
func (fs *flagSet) pairingConfig(what string) (*nearnet.Config, error) {
	g := fs.g
	if g.keyFile != "" || g.insecure {
		return nil, fs.usageError(what + " pairs by a code and pins the peer's identity: it cannot be combined with --key-file or --insecure " +
			"(give --known-peers PATH to keep the pinned peer)")
	}
	if g.knownPeers != "" && len(g.trust) > 0 {
		return nil, fs.usageError("--known-peers and --trust each choose a security mode: give one")
	}
	cfg := &nearnet.Config{Name: g.name, Service: g.service, Interfaces: g.interfaces,
		Proxy: g.proxy, ProxyFromEnvironment: g.proxyEnv, Transport: g.transport.t,
		Security: nearnet.SecurityPinned, Trust: g.trust, KnownPeersFile: g.knownPeers, TrustOnFirstUse: g.tofu}
	if err := fs.resumeConfig(cfg); err != nil {
		return nil, err
	}
	if g.port.set {
		cfg.ListenAddr = ":" + fmt.Sprint(g.port.n)
	}
	if g.identity != "" {
		id, err := security.LoadOrCreateIdentity(g.identity)
		if err != nil {
			return nil, fmt.Errorf("--identity: %s", errText(err))
		}
		cfg.Identity = id
	}
	return cfg, nil
}

// codeEvent shows the code to type on the other machine.
type codeEvent struct {
	head
	Code        string `json:"code"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	Expires     string `json:"expires"`
	Attempts    int    `json:"attempts"`
	URI         string `json:"uri"` // what the QR code carries: the code and this node's fingerprint
	qr          string // the QR code's lines, readable output only
}

func (e *codeEvent) text() string {
	s := fmt.Sprintf("pairing code %s (type it on the other machine; valid until %s, %d attempts); this node: %s, %s",
		e.Code, e.Expires, e.Attempts, clean(e.Name), e.Fingerprint)
	if e.qr != "" {
		s += "\n" + strings.TrimSuffix(e.qr, "\n")
	}
	return s
}

func newCodeEvent(node *nearnet.Node, p *nearnet.Pairing, attempts int, withQR bool) *codeEvent {
	e := &codeEvent{head: head{Event: "code"}, Code: p.Code().Reveal(), Name: node.Name(),
		Fingerprint: node.Fingerprint().String(), Expires: p.Expires().Local().Format("15:04:05"), Attempts: attempts,
		URI: pairURI(p.Code(), node.Fingerprint())}
	if withQR {
		e.qr = qrText(e.URI)
	}
	return e
}

// pairURI is what the QR code carries: the code and the fingerprint of the
// side showing it, so that a phone that scans it can also check it paired
// with the right peer (PROTOCOL.md section 16).
func pairURI(code security.PairingCode, fp security.Fingerprint) string {
	return "nearnet-pair:" + code.Reveal() + "?fp=" + fp.String()
}

// qrText renders s as a QR code for a terminal: two rows of modules per
// line with the half-block characters, dark on light, with the 4-module
// quiet zone the standard asks for. It returns "" if s does not fit.
//
// The QR code comes from github.com/piglig/go-qr (v1.1.0 in
// go-partial.tsv), a port of Nayuki's reference QR Code generator with no
// dependencies, still maintained, whose own decoder lets the test read the
// terminal rendering back. skip2/go-qrcode has not changed since 2020;
// yeqown/go-qrcode/v2 splits its writers into further modules and pulls in
// image libraries. Drawing the modules as text is a few lines.
func qrText(s string) string {
	code, err := qr.EncodeText(s, qr.Medium)
	if err != nil {
		return ""
	}
	const quiet = 4
	n := code.Size()
	dark := func(x, y int) bool {
		x, y = x-quiet, y-quiet
		return x >= 0 && y >= 0 && x < n && y < n && code.Module(x, y)
	}
	var b strings.Builder
	for y := 0; y < n+2*quiet; y += 2 {
		for x := 0; x < n+2*quiet; x++ {
			// Light modules are drawn (the block characters), dark ones
			// left blank: a terminal's background is usually dark.
			top, bottom := !dark(x, y), !dark(x, y+1) && y+1 < n+2*quiet
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// pairedEvent reports the peer paired: trusted from now on.
type pairedEvent struct {
	head
	Name        string `json:"name"`
	Peer        string `json:"peer"`
	Fingerprint string `json:"fingerprint"`
	KnownPeers  string `json:"known_peers,omitempty"` // the file it was recorded in
}

func (e *pairedEvent) text() string {
	s := fmt.Sprintf("paired with %s, %s", peerLabel(e.Name, e.Peer), e.Fingerprint)
	if e.KnownPeers != "" {
		s += "; recorded in " + e.KnownPeers
	} else {
		s += "; trusted until this command ends (give --known-peers PATH to keep it)"
	}
	return s
}

func newPairedEvent(p nearnet.Peer, knownPeers string) *pairedEvent {
	return &pairedEvent{head: head{Event: "paired"}, Name: p.Name, Peer: p.ID.String(), Fingerprint: p.Fingerprint.String(), KnownPeers: knownPeers}
}

// pairFailedEvent reports a failed pairing run.
type pairFailedEvent struct {
	head
	Reason string `json:"reason"`
	Target string `json:"target,omitempty"`
}

func (e *pairFailedEvent) text() string {
	if e.Target != "" {
		return fmt.Sprintf("pairing with %s failed: %s", clean(e.Target), clean(e.Reason))
	}
	return "pairing failed: " + clean(e.Reason)
}

func newPairFailed(target string, err error) *pairFailedEvent {
	return &pairFailedEvent{head: head{Event: "pair_failed"}, Reason: pairErrText(err), Target: target}
}

// pairErrText is a pairing error as the user reads it.
func pairErrText(err error) string {
	var he *nearnet.HandshakeError
	if errors.As(err, &he) {
		err = he.Err
	}
	s := errText(err)
	return strings.TrimPrefix(s, "pairing failed: ")
}

// isPairingFault reports an error of the pairing itself (a mismatch, a
// spent code, both sides in one role), not of reaching the peer.
func isPairingFault(err error) bool {
	var pe *nearnet.PairingError
	return errors.As(err, &pe) && !errors.Is(err, nearnet.ErrNotPairing)
}

// pairingPeers finds the peers that advertise txtPair with value role
// (one not yet in tried), waiting until one appears or ctx ends.
type pairingPeers struct {
	node *nearnet.Node
	role string

	mu    sync.Mutex
	seen  []nearnet.Advert
	tried map[nearnet.PeerID]bool
	ch    chan struct{} // signalled when an advert is added
}

func findPairingPeers(ctx context.Context, node *nearnet.Node, role string) *pairingPeers {
	pp := &pairingPeers{node: node, role: role, tried: map[nearnet.PeerID]bool{}, ch: make(chan struct{}, 1)}
	go node.Browse(ctx, func(be nearnet.BrowseEvent) {
		if be.Kind == nearnet.Lost || be.ID.IsZero() || be.TXT[txtPair] != role {
			return
		}
		pp.mu.Lock()
		pp.seen = append(pp.seen, be.Advert)
		pp.mu.Unlock()
		select {
		case pp.ch <- struct{}{}:
		default:
		}
	})
	return pp
}

// next returns the next peer to try: its peer ID to dial, and its name to
// show. With wait false it returns only one already found, else
// errNoMorePeers.
func (pp *pairingPeers) next(ctx context.Context, wait bool) (id, name string, err error) {
	for {
		pp.mu.Lock()
		for _, a := range pp.seen {
			if !pp.tried[a.ID] {
				pp.tried[a.ID] = true
				pp.mu.Unlock()
				return a.ID.String(), a.Name, nil
			}
		}
		pp.mu.Unlock()
		if !wait {
			return "", "", errNoMorePeers
		}
		select {
		case <-pp.ch:
		case <-ctx.Done():
			return "", "", ctx.Err()
		}
	}
}

// retry makes a peer tried before available to next again.
func (pp *pairingPeers) retry(id string) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for k := range pp.tried {
		if k.String() == id {
			delete(pp.tried, k)
		}
	}
}

var errNoMorePeers = errors.New("no other peer showing a code was found")

// waitPinned waits, at most grace, for the connection the pairing ran on
// to be closed by the side that dialed it, which closes it once it has
// pinned this side too: then both sides have.
func waitPinned(ctx context.Context, node *nearnet.Node, peer nearnet.PeerID, grace time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	for {
		c, err := node.Accept(ctx)
		if err != nil {
			return
		}
		if c.Peer().ID != peer {
			continue
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
		}
		return
	}
}

// showCode prints the code event; the QR code only in readable output.
func showCode(out *printer, node *nearnet.Node, p *nearnet.Pairing, attempts int) {
	out.print("", newCodeEvent(node, p, attempts, !out.json))
}

// pairWith dials and pairs with to, or with the peers found advertising
// role, until one pairs, the pairing fails as such (a mismatch ends it on
// both sides), or the code expires. A peer not reachable or not pairing
// yet is tried again: the other side may still be typing the code.
func pairWith(ctx context.Context, node *nearnet.Node, p *nearnet.Pairing, to, role string, out *printer) (*nearnet.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, p.Expires())
	defer cancel()
	var found *pairingPeers
	if to == "" {
		found = findPairingPeers(ctx, node, role)
	}
	delay := 300 * time.Millisecond // between tries, doubling up to 3s
	for {
		target, label := to, to
		if found != nil {
			var err error
			if target, label, err = found.next(ctx, true); err != nil {
				return nil, fmt.Errorf("no peer waiting with a code was found before the code expired: %w", err)
			}
		}
		c, err := p.Connect(ctx, target)
		switch {
		case err == nil:
			return c, nil
		case isPairingFault(err):
			out.print("", newPairFailed(label, err))
			return nil, errors.New(pairErrText(err))
		case ctx.Err() != nil:
			return nil, fmt.Errorf("the code expired or the wait was interrupted: %s", pairErrText(err))
		}
		if found != nil {
			found.retry(target)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		delay = min(2*delay, 3*time.Second)
	}
}
