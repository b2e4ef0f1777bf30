package security

import (
	"encoding/hex"
	"testing"

	"github.com/nearnet/nearnet/internal/specvec"
)

// TestPairingVectors asserts PROTOCOL.md's pairing vectors (section 16,
// appendix A): the document's inputs run through the code give the
// document's outputs, and the two sides confirm each other.
func TestPairingVectors(t *testing.T) {
	v := specvec.Load(t)
	get := v.Get
	checkHex := func(name string, got []byte) {
		t.Helper()
		v.Check(name, hex.EncodeToString(got))
	}
	code, err := ParsePairingCode(get("pair.code"))
	if err != nil {
		t.Fatal(err)
	}
	var fa, fo Fingerprint
	copy(fa[:], unhex(t, get("pair.fingerprint_answer")))
	copy(fo[:], unhex(t, get("pair.fingerprint_offer")))
	sid := unhex(t, get("pair.exporter"))
	ya := scalarFromHex(t, get("pair.scalar_answer"))
	yb := scalarFromHex(t, get("pair.scalar_offer"))

	ci := pairingCI(fa, fo)
	checkHex("pair.ci", ci)
	checkHex("pair.generator_string", generatorString([]byte(cpaceDSI), code.prs(), ci, sid, cpaceHashBlock))
	g, _ := cpaceGenerator(code.prs(), ci, sid).MarshalBinary()
	checkHex("pair.generator", g)

	offer := newTestOffer(t, code, nil)
	a := newPairing(code, nil, sid, fa, fo, ya)
	o := newPairing(code, offer, sid, fa, fo, yb)
	ma, mo := a.Message(), o.Message()
	checkHex("pair.message_answer", ma)
	checkHex("pair.message_offer", mo)
	k, err := cpaceScalarMultVfy(ya, mo[1:1+cpacePointLen])
	if err != nil {
		t.Fatal(err)
	}
	checkHex("pair.k", k)
	isk := cpaceISK(sid, k, ma[1:1+cpacePointLen], []byte(pairingADAnswer), mo[1:1+cpacePointLen], []byte(pairingADOffer))
	checkHex("pair.isk", isk[:])
	checkHex("pair.mac_key", pairingMACKey(sid, isk[:]))

	ta, err := a.Receive(mo)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := o.Receive(ma)
	if err != nil {
		t.Fatal(err)
	}
	checkHex("pair.tag_answer", ta)
	checkHex("pair.tag_offer", tb)
	if err := a.Confirm(tb); err != nil {
		t.Errorf("answering side: %v", err)
	}
	if err := o.Confirm(ta); err != nil {
		t.Errorf("offering side: %v", err)
	}
}
