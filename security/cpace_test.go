package security

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cloudflare/circl/group"
)

// The vectors below are copied from draft-irtf-cfrg-cpace-21, appendix
// "Test vector for CPace using group ristretto255 and hash SHA-512", and the
// string utility vectors of appendix "CPace function definitions". Hex is
// joined from the draft's wrapped lines.

func draftHex(t *testing.T, s string) []byte {
	t.Helper()
	return unhex(t, strings.Join(strings.Fields(s), ""))
}

func TestCPaceDraftPrependLen(t *testing.T) {
	r := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{nil, "00"},
		{[]byte("1234"), "0431323334"},
		{r(127), "7f" + hex.EncodeToString(r(127))},
		{r(128), "8001" + hex.EncodeToString(r(128))},
	} {
		if got := hex.EncodeToString(prependLen(nil, c.in)); got != c.want {
			t.Errorf("prepend_len(%d bytes) = %s, want %s", len(c.in), got, c.want)
		}
	}
	if got := hex.EncodeToString(lvCat([]byte("1234"), []byte("5"), nil, []byte("678"))); got != "043132333401350003363738" {
		t.Errorf("lv_cat = %s", got)
	}
	if got := hex.EncodeToString(transcriptIR([]byte("123"), []byte("PartyA"), []byte("234"), []byte("PartyB"))); got != "03313233065061727479410332333406506172747942" {
		t.Errorf("transcript_ir = %s", got)
	}
	if got := hex.EncodeToString(transcriptIR([]byte("3456"), []byte("PartyA"), []byte("2345"), []byte("PartyB"))); got != "043334353606506172747941043233343506506172747942" {
		t.Errorf("transcript_ir = %s", got)
	}
}

// TestCPaceDraftRistretto255 reproduces draft-irtf-cfrg-cpace-21's
// ristretto255/SHA-512 vectors: generator, both messages, K and the
// initiator-responder ISK.
func TestCPaceDraftRistretto255(t *testing.T) {
	prs := []byte("Password")
	ci := unhex(t, "0b415f696e69746961746f720b425f726573706f6e646572")
	sid := unhex(t, "7e4b4791d6a8ef019b936c79fb7f2c57")

	gs := generatorString([]byte(cpaceDSI), prs, ci, sid, cpaceHashBlock)
	check(t, "generator_string", gs, draftHex(t, `
      11435061636552697374726574746f3235350850617373776f726464
      00000000000000000000000000000000000000000000000000000000
      00000000000000000000000000000000000000000000000000000000
      00000000000000000000000000000000000000000000000000000000
      00000000000000000000000000000000180b415f696e69746961746f
      720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
      2c57`))
	h := sha512.Sum512(gs)
	check(t, "hash result", h[:], draftHex(t, `
      da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288
      b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772
      05f90851a657ee27`))
	g := cpaceGenerator(prs, ci, sid)
	gEnc, _ := g.MarshalBinary()
	check(t, "encoded generator g", gEnc, draftHex(t, `
      222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5
      698c7e56`))

	ya := scalarFromHex(t, `da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4f
      f0976d08`)
	yb := scalarFromHex(t, `d2316b454718c35362d83d69df6320f38578ed5984651435e2949762
      d900b80d`)
	Ya := cpaceScalarMult(ya, g)
	check(t, "Ya", Ya, draftHex(t, `d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec
      482b9157`))
	Yb := cpaceScalarMult(yb, g)
	check(t, "Yb", Yb, draftHex(t, `3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7
      433f7258`))

	wantK := draftHex(t, `80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc98
      87c8b40f`)
	Ka, err := cpaceScalarMultVfy(ya, Yb)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "scalar_mult_vfy(ya,Yb)", Ka, wantK)
	Kb, err := cpaceScalarMultVfy(yb, Ya)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "scalar_mult_vfy(yb,Ya)", Kb, wantK)

	ada, adb := []byte("ADa"), []byte("ADb")
	check(t, "transcript_ir", transcriptIR(Ya, ada, Yb, adb), draftHex(t, `
      20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
      ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
      8232b5ebe63324e2d9e7433f725803414462`))
	isk := cpaceISK(sid, Ka, Ya, ada, Yb, adb)
	check(t, "ISK (initiator/responder)", isk[:], draftHex(t, `
      b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
      ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
      3fa2068af7900447`))
}

// TestCPaceDraftScalarMultVfy is the draft's "Test case for scalar_mult with
// valid inputs" and "Invalid inputs for scalar_mult_vfy" for ristretto255:
// an invalid encoding and the identity must both abort.
func TestCPaceDraftScalarMultVfy(t *testing.T) {
	s := scalarFromHex(t, "7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05")
	X := unhex(t, "2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c")
	want := unhex(t, "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e")
	dec := group.Ristretto255.NewElement()
	if err := dec.UnmarshalBinary(X); err != nil {
		t.Fatal(err)
	}
	check(t, "scalar_mult(s,decode(X))", cpaceScalarMult(s, dec), want)
	got, err := cpaceScalarMultVfy(s, X)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "scalar_mult_vfy(s,X)", got, want)

	for name, y := range map[string]string{
		"Y_i1":        "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c",
		"Y_i2 == G.I": "0000000000000000000000000000000000000000000000000000000000000000",
		"short":       "2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a5",
		// Beyond the draft: encodings RFC 9496 (4.3.1) requires decoding to
		// reject.
		"s = p, not canonical": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"s negative (odd)":     "0100000000000000000000000000000000000000000000000000000000000000",
		"bit 255 set":          "0000000000000000000000000000000000000000000000000000000000000080",
	} {
		if _, err := cpaceScalarMultVfy(s, unhex(t, y)); err != errCPaceInvalidPoint {
			t.Errorf("scalar_mult_vfy(s, %s): got %v, want the abort", name, err)
		}
	}
}

// TestCPaceSampleScalar checks the draft's recommended sampling: 252 bits.
func TestCPaceSampleScalar(t *testing.T) {
	a, b := cpaceSampleScalar(), cpaceSampleScalar()
	if a.IsEqual(b) {
		t.Fatal("two sampled scalars are equal")
	}
	for range 64 {
		enc, _ := cpaceSampleScalar().MarshalBinary()
		if enc[31]&0xf0 != 0 {
			t.Fatalf("sampled scalar %x has bits above 252 set", enc)
		}
	}
}

func scalarFromHex(t *testing.T, s string) group.Scalar {
	t.Helper()
	var b [32]byte
	copy(b[:], draftHex(t, s))
	y, err := cpaceScalar(b)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func check(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", name, got, want)
	}
}
