package nearnet

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/security"
)

// pairingNode is a node in SecurityPinned mode with a known-peers file of
// its own and nothing trusted yet.
func pairingNode(t *testing.T, tr Transport, name string, id *security.Identity) (*Node, string) {
	t.Helper()
	kp := filepath.Join(t.TempDir(), "known_peers")
	return newNodeOn(t, tr, Config{Name: name, Identity: id, Security: SecurityPinned, KnownPeersFile: kp}), kp
}

func newIdentity(t *testing.T) *security.Identity {
	t.Helper()
	id, err := security.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func knownPeer(t *testing.T, path string, fp security.Fingerprint) (string, bool) {
	t.Helper()
	kp, err := security.LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	return kp.Name(fp)
}

// failures collects a Pairing's OnFailure reports.
type failures struct{ ch chan error }

func newFailures() *failures { return &failures{ch: make(chan error, 16)} }

func (f *failures) add(err error) { f.ch <- err }

// TestPairingPinsBothSides pairs two nodes that trust nothing, in both
// directions of dialing (the typing side dials, as `nearnet pair CODE`;
// the showing side dials, as `nearnet send --code`), then connects them
// again with no pairing: each has pinned the other, in memory and in its
// known-peers file.
func TestPairingPinsBothSides(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		for _, offerDials := range []bool{false, true} {
			idA, idB := newIdentity(t), newIdentity(t)
			a, kpA := pairingNode(t, tr, "shows", idA)
			b, kpB := pairingNode(t, tr, "types", idB)
			ctx := ctxT(t)
			offer, err := a.OfferPairing(nil)
			if err != nil {
				t.Fatal(err)
			}
			if s := offer.Code().String(); strings.ContainsAny(s, "0123456789") {
				t.Fatalf("the code prints as %q", s)
			}
			answer, err := b.AnswerPairing(offer.Code(), nil)
			if err != nil {
				t.Fatal(err)
			}
			dialer, waiter, target := answer, offer, a.Addr().String()
			if offerDials {
				dialer, waiter, target = offer, answer, b.Addr().String()
			}
			c, err := dialer.Connect(ctx, target)
			if err != nil {
				t.Fatalf("offer dials %t: %v", offerDials, err)
			}
			peer, err := waiter.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			dialerNode, waiterNode := b, a
			if offerDials {
				dialerNode, waiterNode = a, b
			}
			if c.Peer().Fingerprint != waiterNode.Fingerprint() || peer.Fingerprint != dialerNode.Fingerprint() {
				t.Fatalf("paired %v and %v, want %v and %v", c.Peer().Fingerprint, peer.Fingerprint, waiterNode.Fingerprint(), dialerNode.Fingerprint())
			}
			if p, err := dialer.Wait(ctx); err != nil || p.ID != waiterNode.ID() {
				t.Fatalf("dialer's Wait: %v, %v", p.ID, err)
			}
			// The connection the pairing ran on is an ordinary one.
			cw, err := waiterNode.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sendOne(t, ctx, c, cw, "after pairing")
			if name, ok := knownPeer(t, kpA, idB.Fingerprint()); !ok || name != "types" {
				t.Fatalf("a's known peers: %q %t", name, ok)
			}
			if name, ok := knownPeer(t, kpB, idA.Fingerprint()); !ok || name != "shows" {
				t.Fatalf("b's known peers: %q %t", name, ok)
			}
			// The code is spent.
			if _, err := answer.Connect(ctx, a.Addr().String()); !errors.Is(err, ErrPairingCodeUsedUp) {
				t.Fatalf("pairing again with a spent code: %v", err)
			}
			offer.Close()
			answer.Close()

			// New nodes with the same identities and files: no code.
			a2 := newNodeOn(t, tr, Config{Identity: idA, KnownPeersFile: kpA})
			b2 := newNodeOn(t, tr, Config{Identity: idB, KnownPeersFile: kpB})
			c2, err := b2.Connect(ctx, a2.Addr().String())
			if err != nil {
				t.Fatalf("connecting after pairing: %v", err)
			}
			if c2.Peer().Fingerprint != idA.Fingerprint() {
				t.Fatal("wrong peer")
			}
		}
	})
}

// TestPairingWrongCode: a wrong code fails on both sides with
// ErrPairingCodeMismatch, at once; after the allowed attempts the code is
// dead on the offering side even for the right code, and nothing is pinned.
func TestPairingWrongCode(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		var logs lockedBuffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		kpA, kpB := filepath.Join(t.TempDir(), "known_peers"), filepath.Join(t.TempDir(), "known_peers")
		a := newNodeOn(t, tr, Config{Name: "shows", Security: SecurityPinned, KnownPeersFile: kpA, Logger: logger})
		b := newNodeOn(t, tr, Config{Name: "types", Security: SecurityPinned, KnownPeersFile: kpB, Logger: logger})
		ctx := ctxT(t)
		fails := newFailures()
		offer, err := a.OfferPairing(&PairingOptions{OnFailure: fails.add})
		if err != nil {
			t.Fatal(err)
		}
		wrong := otherCode(t, offer.Code())
		for i := 0; i < security.DefaultPairingAttempts; i++ {
			answer, err := b.AnswerPairing(wrong, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = answer.Connect(ctx, a.Addr().String())
			var pe *PairingError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPairingCodeMismatch) || pe.Remote {
				t.Fatalf("attempt %d: %v (%T), want a local *PairingError with ErrPairingCodeMismatch", i+1, err, err)
			}
			if !strings.Contains(err.Error(), "did not match") {
				t.Fatalf("error %q does not say the code did not match", err)
			}
			if ferr := <-fails.ch; !errors.Is(ferr, ErrPairingCodeMismatch) {
				t.Fatalf("the offering side saw %v", ferr)
			}
			answer.Close()
		}
		if _, err := offer.Wait(ctx); !errors.Is(err, ErrPairingCodeUsedUp) {
			t.Fatalf("offer after %d mismatches: %v", security.DefaultPairingAttempts, err)
		}
		right, err := b.AnswerPairing(offer.Code(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = right.Connect(ctx, a.Addr().String())
		var pe *PairingError
		if !errors.As(err, &pe) || !pe.Remote || !errors.Is(err, ErrPairingCodeUsedUp) {
			t.Fatalf("the right code after the attempts: %v, want the peer's ErrPairingCodeUsedUp", err)
		}
		if digits := strings.ReplaceAll(offer.Code().Reveal(), "-", ""); strings.Contains(logs.String(), digits) {
			t.Fatalf("the code's digits are in the logs:\n%s", logs.String())
		}
		if !strings.Contains(logs.String(), "pairing code mismatch") {
			t.Fatalf("the logs do not show the refused runs:\n%s", logs.String())
		}
		for _, f := range []string{kpA, kpB} {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists after failed pairings: %v", f, err)
			}
		}
	})
}

func otherCode(t *testing.T, c security.PairingCode) security.PairingCode {
	t.Helper()
	d := []byte(strings.ReplaceAll(c.Reveal(), "-", ""))
	d[5] = '0' + (d[5]-'0'+1)%10
	w, err := security.ParsePairingCode(string(d))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPairingRefusals: a peer that is not pairing, two sides that both
// show a code, a code that expired, and a node not in SecurityPinned mode
// each fail with an error that says so.
func TestPairingRefusals(t *testing.T) {
	ctx := ctxT(t)
	a, _ := pairingNode(t, TransportTCP, "a", nil)
	b, _ := pairingNode(t, TransportTCP, "b", nil)

	answer, err := b.AnswerPairing(security.NewPairingCode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := answer.Connect(ctx, a.Addr().String()); !errors.Is(err, ErrNotPairing) {
		t.Fatalf("pairing with a node that is not pairing: %v", err)
	}
	answer.Close()

	oa, err := a.OfferPairing(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.OfferPairing(nil); err == nil {
		t.Fatal("a second pairing on one node was accepted")
	}
	ob, err := b.OfferPairing(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ob.Connect(ctx, a.Addr().String())
	if _, ok := errorsAs[*PairingError](err); !ok || !strings.Contains(err.Error(), "both sides show a code") {
		t.Fatalf("two offering sides: %v", err)
	}
	oa.Close()
	ob.Close()

	short, err := a.OfferPairing(&PairingOptions{Lifetime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Wait(ctx); !errors.Is(err, ErrPairingCodeExpired) {
		t.Fatalf("an offer past its lifetime: %v", err)
	}
	late, _ := b.AnswerPairing(short.Code(), nil)
	if _, err := late.Connect(ctx, a.Addr().String()); !errors.Is(err, ErrPairingCodeExpired) {
		t.Fatalf("answering an expired code: %v", err)
	}

	// Closing the node ends its pairing.
	c, _ := pairingNode(t, TransportTCP, "c", nil)
	oc, err := c.OfferPairing(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := oc.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Node.Close: %v", err)
	}

	psk := newNode(t, Config{})
	var ce *ConfigError
	if _, err := psk.OfferPairing(nil); !errors.As(err, &ce) || ce.Field != "Config.Security" {
		t.Fatalf("pairing on a PSK node: %v", err)
	}
	if _, err := a.OfferPairing(&PairingOptions{MaxAttempts: 11}); !errors.As(err, &ce) || ce.Field != "PairingOptions.MaxAttempts" {
		t.Fatalf("MaxAttempts 11: %v", err)
	}
}

// TestPairingRepairReplacesEntry: pairing again with a peer that is known
// under another name replaces its entry rather than adding one.
func TestPairingRepairReplacesEntry(t *testing.T) {
	ctx := ctxT(t)
	idB := newIdentity(t)
	a, kpA := pairingNode(t, TransportTCP, "a", nil)
	for _, name := range []string{"old name", "new name"} {
		b := newNodeOn(t, TransportTCP, Config{Name: name, Identity: idB, Security: SecurityPinned})
		offer, err := a.OfferPairing(nil)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := b.AnswerPairing(offer.Code(), nil)
		if _, err := answer.Connect(ctx, a.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if _, err := offer.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		offer.Close()
		b.Close()
	}
	data, err := os.ReadFile(kpA)
	if err != nil {
		t.Fatal(err)
	}
	if want := idB.Fingerprint().String() + " new name\n"; string(data) != want {
		t.Fatalf("known peers after pairing twice:\n%s\nwant:\n%s", data, want)
	}
}

// lockedBuffer is a bytes.Buffer for a logger written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPairingThroughTLSRelayFails: a machine in the middle that terminates
// TLS with each side and forwards every byte between them, unchanged,
// cannot complete a pairing even with both sides holding the right code:
// its two TLS sessions have different exporters. Both sides fail with the
// mismatch, and neither pins anything.
func TestPairingThroughTLSRelayFails(t *testing.T) {
	ctx := ctxT(t)
	a, kpA := pairingNode(t, TransportTCP, "shows", nil)
	b, kpB := pairingNode(t, TransportTCP, "types", nil)
	relayID := newIdentity(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", security.ServerConfig(relayID, nil))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := tls.Dial("tcp", a.Addr().String(), security.ClientConfig(relayID, nil))
			if err != nil {
				in.Close()
				continue
			}
			wg.Add(2)
			for _, p := range [][2]net.Conn{{in, out}, {out, in}} {
				go func() {
					defer wg.Done()
					io.Copy(p[1], p[0])
					p[1].Close()
				}()
			}
		}
	}()
	fails := newFailures()
	offer, err := a.OfferPairing(&PairingOptions{OnFailure: fails.add})
	if err != nil {
		t.Fatal(err)
	}
	defer offer.Close()
	answer, _ := b.AnswerPairing(offer.Code(), nil)
	if _, err := answer.Connect(ctx, ln.Addr().String()); !errors.Is(err, ErrPairingCodeMismatch) {
		t.Fatalf("pairing through a TLS relay: %v, want ErrPairingCodeMismatch", err)
	}
	if err := <-fails.ch; !errors.Is(err, ErrPairingCodeMismatch) {
		t.Fatalf("the offering side behind the relay saw %v", err)
	}
	for _, f := range []string{kpA, kpB} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s written after a relayed pairing: %v", f, err)
		}
	}
	// The offer is still good for the peer itself.
	answer.Close()
	direct, _ := b.AnswerPairing(offer.Code(), nil)
	if _, err := direct.Connect(ctx, a.Addr().String()); err != nil {
		t.Fatalf("pairing directly after the relay failed: %v", err)
	}
}
