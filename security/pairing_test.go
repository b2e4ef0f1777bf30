package security

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsPipe runs a real TLS 1.3 handshake over an in-memory net.Pipe between
// a client with identity cid and a server with identity sid.
func tlsPipe(t *testing.T, cid, sid *Identity) (cli, srv *tls.Conn) {
	t.Helper()
	a, b := net.Pipe()
	cli = tls.Client(a, ClientConfig(cid, nil))
	srv = tls.Server(b, ServerConfig(sid, nil))
	// Close the pipe, not the TLS connections: their close_notify would
	// block for its 5-second timeout, since no one reads the pipe.
	t.Cleanup(func() { a.Close(); b.Close() })
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cli, srv
}

// writeFrame and readFrame carry one pairing message or tag, with a
// two-byte length, as the session layer would.
func writeFrame(w io.Writer, b []byte) error {
	_, err := w.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(n[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

// exchange sends v and reads the peer's frame at the same time (net.Pipe
// and TLS over it are unbuffered).
func exchange(c net.Conn, v []byte) ([]byte, error) {
	errc := make(chan error, 1)
	go func() { errc <- writeFrame(c, v) }()
	got, err := readFrame(c)
	if werr := <-errc; err == nil {
		err = werr
	}
	return got, err
}

// runPairing is what the session layer does on either side.
func runPairing(c net.Conn, p *Pairing) error {
	peerMsg, err := exchange(c, p.Message())
	if err != nil {
		return err
	}
	tag, err := p.Receive(peerMsg)
	if err != nil {
		return err
	}
	peerTag, err := exchange(c, tag)
	if err != nil {
		return err
	}
	return p.Confirm(peerTag)
}

// pairOverTLS pairs an answering side with an offering side over TLS on an
// in-memory pipe; the answering side is the TLS client if answerDials.
func pairOverTLS(t *testing.T, offer *Offer, answerCode PairingCode, answerDials bool) (answerP, offerP *Pairing, answerErr, offerErr error) {
	t.Helper()
	aid, oid := newTestIdentity(t), newTestIdentity(t)
	var ac, oc *tls.Conn
	if answerDials {
		ac, oc = tlsPipe(t, aid, oid)
	} else {
		oc, ac = tlsPipe(t, oid, aid)
	}
	acs, ocs := ac.ConnectionState(), oc.ConnectionState()
	answerP, err := StartAnswer(answerCode, &acs, aid.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	offerP, err = offer.Start(&ocs, oid.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- runPairing(oc, offerP) }()
	answerErr = runPairing(ac, answerP)
	offerErr = <-done
	if answerErr == nil && answerP.Peer() != oid.Fingerprint() {
		t.Errorf("answering side paired with %s, want %s", answerP.Peer(), oid.Fingerprint())
	}
	if offerErr == nil && offerP.Peer() != aid.Fingerprint() {
		t.Errorf("offering side paired with %s, want %s", offerP.Peer(), aid.Fingerprint())
	}
	return answerP, offerP, answerErr, offerErr
}

func newTestOffer(t *testing.T, code PairingCode, cfg *OfferConfig) *Offer {
	t.Helper()
	o, err := NewOffer(code, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestPairingOverTLS(t *testing.T) {
	code := NewPairingCode()
	typed, err := ParsePairingCode(code.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	// Either side may be the TLS client.
	offer := newTestOffer(t, code, nil)
	if _, _, aerr, oerr := pairOverTLS(t, offer, typed, false); aerr != nil || oerr != nil {
		t.Fatalf("offering side dialled: answer %v, offer %v", aerr, oerr)
	}
	offer = newTestOffer(t, code, nil)
	if _, _, aerr, oerr := pairOverTLS(t, offer, typed, true); aerr != nil || oerr != nil {
		t.Fatalf("answering side dialled: answer %v, offer %v", aerr, oerr)
	}
	// The offer has paired: even the right code is refused now.
	aid := newTestIdentity(t)
	_, srv := tlsPipe(t, aid, newTestIdentity(t))
	scs := srv.ConnectionState()
	if _, err := offer.Start(&scs, aid.Fingerprint()); !errors.Is(err, ErrPairingCodeUsedUp) {
		t.Errorf("Start after pairing: %v, want ErrPairingCodeUsedUp", err)
	}
}

func TestPairingWrongCodeFailsOnBothSides(t *testing.T) {
	code, _ := ParsePairingCode("123456")
	wrong, _ := ParsePairingCode("123457")
	_, _, aerr, oerr := pairOverTLS(t, newTestOffer(t, code, nil), wrong, true)
	if !errors.Is(aerr, ErrPairingCodeMismatch) || !errors.Is(oerr, ErrPairingCodeMismatch) {
		t.Fatalf("answer %v, offer %v; want ErrPairingCodeMismatch on both", aerr, oerr)
	}
	mustContain(t, aerr.Error(), "pairing code did not match")
}

// TestPairingRelayFails puts a machine in the middle that terminates TLS
// with each side and forwards the pairing messages: the two TLS sessions
// have different exporters (and the sides see the relay's certificate), so
// even with the right code both sides fail with ErrPairingCodeMismatch.
func TestPairingRelayFails(t *testing.T) {
	code := NewPairingCode()
	offer := newTestOffer(t, code, nil)
	aid, oid, rid := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	acli, rsrv := tlsPipe(t, aid, rid) // answering side -> relay
	rcli, osrv := tlsPipe(t, rid, oid) // relay -> offering side
	ccs, scs := acli.ConnectionState(), osrv.ConnectionState()
	ap, err := StartAnswer(code, &ccs, aid.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	op, err := offer.Start(&scs, oid.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	relay := func(dst, src net.Conn) {
		defer wg.Done()
		for range 2 { // the message, then the tag
			b, err := readFrame(src)
			if err != nil {
				return
			}
			if writeFrame(dst, b) != nil {
				return
			}
		}
	}
	wg.Add(2)
	go relay(rcli, rsrv)
	go relay(rsrv, rcli)
	done := make(chan error, 1)
	go func() { done <- runPairingRelayed(osrv, op) }()
	aerr := runPairingRelayed(acli, ap)
	oerr := <-done
	wg.Wait()
	if !errors.Is(aerr, ErrPairingCodeMismatch) || !errors.Is(oerr, ErrPairingCodeMismatch) {
		t.Fatalf("answer %v, offer %v; want ErrPairingCodeMismatch on both", aerr, oerr)
	}
}

// runPairingRelayed is runPairing for an end whose peer is a relay that
// reads before it writes: send, then read.
func runPairingRelayed(c net.Conn, p *Pairing) error {
	if err := writeFrame(c, p.Message()); err != nil {
		return err
	}
	peerMsg, err := readFrame(c)
	if err != nil {
		return err
	}
	tag, err := p.Receive(peerMsg)
	if err != nil {
		return err
	}
	if err := writeFrame(c, tag); err != nil {
		return err
	}
	peerTag, err := readFrame(c)
	if err != nil {
		return err
	}
	return p.Confirm(peerTag)
}

// memPair runs both sides in memory with the given channel inputs.
func memPair(a, o *Pairing) (aerr, oerr error) {
	at, aerr := a.Receive(o.Message())
	ot, oerr := o.Receive(a.Message())
	if aerr == nil {
		aerr = a.Confirm(ot)
	}
	if oerr == nil {
		oerr = o.Confirm(at)
	}
	return aerr, oerr
}

var (
	fpAnswer = Fingerprint{1}
	fpOffer  = Fingerprint{2}
)

func TestPairingBindsExporterAndFingerprints(t *testing.T) {
	code := NewPairingCode()
	sid := []byte("0123456789abcdef0123456789abcdef")
	for _, c := range []struct {
		name                string
		sid                 string
		answerFP, offerFP   Fingerprint
		aSeesOffer, oSeesAn Fingerprint
		ok                  bool
	}{
		{"same", string(sid), fpAnswer, fpOffer, fpOffer, fpAnswer, true},
		{"other exporter", "another TLS session's exporter..", fpAnswer, fpOffer, fpOffer, fpAnswer, false},
		{"other offer certificate", string(sid), fpAnswer, fpOffer, Fingerprint{3}, fpAnswer, false},
		{"other answer certificate", string(sid), fpAnswer, fpOffer, fpOffer, Fingerprint{3}, false},
	} {
		offer := newTestOffer(t, code, nil)
		a := newPairing(code, nil, sid, c.answerFP, c.aSeesOffer, cpaceSampleScalar())
		o := newPairing(code, offer, []byte(c.sid), c.oSeesAn, c.offerFP, cpaceSampleScalar())
		aerr, oerr := memPair(a, o)
		if c.ok && (aerr != nil || oerr != nil) {
			t.Errorf("%s: answer %v, offer %v", c.name, aerr, oerr)
		}
		if !c.ok && (!errors.Is(aerr, ErrPairingCodeMismatch) || !errors.Is(oerr, ErrPairingCodeMismatch)) {
			t.Errorf("%s: answer %v, offer %v; want ErrPairingCodeMismatch on both", c.name, aerr, oerr)
		}
	}
}

func TestOfferAttempts(t *testing.T) {
	code, _ := ParsePairingCode("000000")
	wrong, _ := ParsePairingCode("000001")
	sid := make([]byte, 32)
	offer := newTestOffer(t, code, nil)
	for i := range DefaultPairingAttempts {
		a := newPairing(wrong, nil, sid, fpAnswer, fpOffer, cpaceSampleScalar())
		o := newPairing(code, offer, sid, fpAnswer, fpOffer, cpaceSampleScalar())
		if aerr, oerr := memPair(a, o); !errors.Is(aerr, ErrPairingCodeMismatch) || !errors.Is(oerr, ErrPairingCodeMismatch) {
			t.Fatalf("attempt %d: answer %v, offer %v", i+1, aerr, oerr)
		}
	}
	// A run that started before the limit was reached is refused at Receive
	// even with the right code; so is a new one at Start.
	a := newPairing(code, nil, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	o := newPairing(code, offer, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	if _, err := o.Receive(a.Message()); !errors.Is(err, ErrPairingCodeUsedUp) {
		t.Errorf("Receive after %d attempts: %v, want ErrPairingCodeUsedUp", DefaultPairingAttempts, err)
	}
	if _, err := offer.Start(nil, fpOffer); !errors.Is(err, ErrPairingCodeUsedUp) {
		t.Errorf("Start after %d attempts: %v, want ErrPairingCodeUsedUp", DefaultPairingAttempts, err)
	}
	mustContain(t, offer.String(), "3 of 3 attempts")
}

// TestOfferAbandonedRunCounts: a peer that sends its message and goes away
// has had its guess.
func TestOfferAbandonedRunCounts(t *testing.T) {
	code := NewPairingCode()
	sid := make([]byte, 32)
	offer := newTestOffer(t, code, &OfferConfig{MaxAttempts: 1})
	a := newPairing(code, nil, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	o := newPairing(code, offer, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	if _, err := o.Receive(a.Message()); err != nil {
		t.Fatal(err)
	}
	a = newPairing(code, nil, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	o = newPairing(code, offer, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	if _, err := memPair(a, o); !errors.Is(err, ErrPairingCodeUsedUp) {
		t.Errorf("offer side: %v, want ErrPairingCodeUsedUp", err)
	}
}

func TestOfferExpiry(t *testing.T) {
	code := NewPairingCode()
	sid := make([]byte, 32)
	offer := newTestOffer(t, code, &OfferConfig{Lifetime: time.Minute})
	now := time.Now()
	offer.now = func() time.Time { return now }
	a := newPairing(code, nil, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	o := newPairing(code, offer, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	now = now.Add(time.Minute + time.Second)
	if _, err := offer.Start(nil, fpOffer); !errors.Is(err, ErrPairingCodeExpired) {
		t.Errorf("Start after expiry: %v, want ErrPairingCodeExpired", err)
	}
	if _, oerr := memPair(a, o); !errors.Is(oerr, ErrPairingCodeExpired) {
		t.Errorf("right code after expiry: %v, want ErrPairingCodeExpired", oerr)
	}
	if errors.Is(ErrPairingCodeExpired, ErrPairingCodeMismatch) || errors.Is(ErrPairingCodeUsedUp, ErrPairingCodeMismatch) {
		t.Error("the dead-code errors must be distinct from a mismatch")
	}
}

func TestPairingRejectsBadMessages(t *testing.T) {
	code := NewPairingCode()
	sid := make([]byte, 32)
	mk := func() (a, o *Pairing) {
		offer := newTestOffer(t, code, nil)
		return newPairing(code, nil, sid, fpAnswer, fpOffer, cpaceSampleScalar()),
			newPairing(code, offer, sid, fpAnswer, fpOffer, cpaceSampleScalar())
	}
	a, o := mk()
	identity := encodePairingMessage(make([]byte, 32), []byte(pairingADAnswer))
	if _, err := o.Receive(identity); err == nil || errors.Is(err, ErrPairingCodeMismatch) {
		t.Errorf("identity share: %v", err)
	}
	if _, err := a.Receive(o.Message()[:10]); err == nil {
		t.Error("truncated message accepted")
	}
	// Both sides offering (or both answering) is named, not a mismatch.
	a, o = mk()
	o2 := newPairing(code, newTestOffer(t, code, nil), sid, fpAnswer, fpOffer, cpaceSampleScalar())
	_, err := o.Receive(o2.Message())
	mustContain(t, fmt.Sprint(err), "both sides show a code")
	_, err = a.Receive(a.Message())
	mustContain(t, fmt.Sprint(err), "both sides typed a code")
	a, _ = mk()
	_, err = a.Receive(encodePairingMessage(o.Message()[1:33], []byte("relay")))
	mustContain(t, fmt.Sprint(err), `unknown role "relay"`)
}

func TestPairingCodeParse(t *testing.T) {
	for _, s := range []string{"123456", "123 456", "123-456", " 12 34 56 "} {
		c, err := ParsePairingCode(s)
		if err != nil || c.Reveal() != "123-456" {
			t.Errorf("ParsePairingCode(%q) = %s, %v", s, c.Reveal(), err)
		}
	}
	for _, s := range []string{"", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123_456"} {
		_, err := ParsePairingCode(s)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParsePairingCode(%q) = %v, want a *ParseError", s, err)
			continue
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains the input", err)
		}
	}
	seen := map[string]bool{}
	for range 20 {
		c := NewPairingCode()
		if _, err := ParsePairingCode(c.Reveal()); err != nil {
			t.Fatal(err)
		}
		seen[c.Reveal()] = true
	}
	if len(seen) < 15 {
		t.Errorf("20 new codes, only %d distinct", len(seen))
	}
}

// TestPairingCodeNeverPrinted: the digits appear in no String, format verb
// or error.
func TestPairingCodeNeverPrinted(t *testing.T) {
	code, _ := ParsePairingCode("987654")
	offer := newTestOffer(t, code, nil)
	p := newPairing(code, offer, make([]byte, 32), fpAnswer, fpOffer, cpaceSampleScalar())
	var outs []string
	for _, v := range []any{code, &code, offer, p, *p, struct{ C PairingCode }{code}, []PairingCode{code}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
	}
	// fmt cannot call Format on an unexported field; it prints the pointer
	// (but a verb wrong for the struct, such as %s, dumps the bytes).
	type hidden struct{ c PairingCode }
	for _, verb := range []string{"%v", "%+v", "%#v", "%d", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, hidden{code}))
	}
	_, err := ParsePairingCode("98765")
	outs = append(outs, err.Error(), code.String(), code.GoString())
	for _, s := range outs {
		if strings.Contains(s, "987654") || strings.Contains(s, "987-654") || strings.Contains(s, "9876") || strings.Contains(s, "57 56 55") {
			t.Errorf("output shows the code: %q", s)
		}
	}
}

func TestNewOfferConfig(t *testing.T) {
	code := NewPairingCode()
	if _, err := NewOffer(PairingCode{}, nil); err == nil {
		t.Error("zero code accepted")
	}
	for _, cfg := range []OfferConfig{{MaxAttempts: -1}, {MaxAttempts: 11}, {Lifetime: -time.Second}, {Lifetime: 2 * time.Hour}} {
		_, err := NewOffer(code, &cfg)
		if err == nil {
			t.Errorf("%+v accepted", cfg)
			continue
		}
		mustContain(t, err.Error(), "OfferConfig.")
	}
	o := newTestOffer(t, code, nil)
	if d := time.Until(o.Expires()); d < DefaultPairingLifetime-time.Minute || d > DefaultPairingLifetime {
		t.Errorf("default lifetime: expires in %v", d)
	}
}

// FuzzDecodePairingMessage: the decoder never panics, accepts only what the
// encoder produces, and the share it returns goes through scalar_mult_vfy
// without panicking.
func FuzzDecodePairingMessage(f *testing.F) {
	code := NewPairingCode()
	for _, offer := range []*Offer{nil, {code: code}} {
		p := newPairing(code, offer, make([]byte, 32), fpAnswer, fpOffer, cpaceSampleScalar())
		f.Add(p.Message())
	}
	f.Add([]byte{})
	f.Add(encodePairingMessage(make([]byte, 32), nil))
	f.Add(append(encodePairingMessage(make([]byte, 32), []byte("offer")), 0))
	y := cpaceSampleScalar()
	f.Fuzz(func(t *testing.T, b []byte) {
		Y, ad, err := decodePairingMessage(b)
		if err != nil {
			return
		}
		if got := encodePairingMessage(Y, ad); string(got) != string(b) {
			t.Fatalf("decode(%x) re-encodes as %x", b, got)
		}
		cpaceScalarMultVfy(y, Y)
	})
}
