package security

import (
	"bufio"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
)

// pairingVectors reads the "name = value" lines of PAIRING.md, in the form
// internal/specvec reads from PROTOCOL.md's appendix. When the section moves
// into PROTOCOL.md, this becomes specvec.Load(t).
func pairingVectors(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("PAIRING.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^    ([a-z0-9_.]+) += (.+)$`)
	v := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			v[m[1]] = strings.TrimSpace(m[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPairingVectors asserts PAIRING.md's test vector: the document's inputs
// run through the code give the document's outputs, and the two sides
// confirm each other.
func TestPairingVectors(t *testing.T) {
	v := pairingVectors(t)
	get := func(name string) string {
		t.Helper()
		s, ok := v[name]
		if !ok {
			t.Fatalf("PAIRING.md has no test vector %q", name)
		}
		return s
	}
	checkHex := func(name string, got []byte) {
		t.Helper()
		if want := get(name); want != hex.EncodeToString(got) {
			t.Errorf("PAIRING.md's %s = %s, the code computes %x", name, want, got)
		}
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
