package security

// CPace (draft-irtf-cfrg-cpace-21) with the cipher suite CPACE-RISTR255-SHA512,
// in the initiator-responder setting. This file holds only what the draft
// specifies; pairing.go decides the inputs (PRS, CI, sid, ADa, ADb).
//
// The group arithmetic is github.com/cloudflare/circl/group.Ristretto255.
// circl has no public "element derivation from 64 uniform bytes" (RFC 9496,
// section 4.3.4): its HashToElement always runs expand_message_xmd over its
// input first. The derivation is therefore glued from the Elligator map of
// github.com/bwesterb/go-ristretto, the library circl's ristretto255 is built
// on, exactly as circl's own HashToElement does after expanding:
// MAP(b[0:32]) + MAP(b[32:64]).

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"

	r255 "github.com/bwesterb/go-ristretto"
	"github.com/cloudflare/circl/group"
)

const (
	// cpaceDSI is G_Ristretto255.DSI.
	cpaceDSI = "CPaceRistretto255"
	// cpaceHashBlock is H.s_in_bytes for SHA-512.
	cpaceHashBlock = 128
	// cpacePointLen is the length of an encoded ristretto255 element.
	cpacePointLen = 32
)

// errCPaceInvalidPoint is returned when the peer's share does not decode to
// a ristretto255 element or the shared point K is the identity: the draft's
// abort condition (scalar_mult_vfy returned G.I).
var errCPaceInvalidPoint = errors.New("the peer's CPace share is not a valid ristretto255 element, or is the identity")

// prependLen is the draft's prepend_len: the length of data as LEB128,
// followed by data.
func prependLen(dst, data []byte) []byte {
	n := len(data)
	for {
		if n < 0x80 {
			dst = append(dst, byte(n))
			break
		}
		dst = append(dst, byte(n&0x7f)|0x80)
		n >>= 7
	}
	return append(dst, data...)
}

// lvCat is the draft's lv_cat: prepend_len of each argument, concatenated.
func lvCat(args ...[]byte) []byte {
	var out []byte
	for _, a := range args {
		out = prependLen(out, a)
	}
	return out
}

// generatorString is the draft's generator_string(DSI, PRS, CI, sid,
// s_in_bytes): lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid) with
// len_zpad = max(0, s_in_bytes - 1 - len(prepend_len(PRS)) - len(prepend_len(DSI))).
func generatorString(dsi, prs, ci, sid []byte, sInBytes int) []byte {
	zpad := sInBytes - 1 - len(prependLen(nil, prs)) - len(prependLen(nil, dsi))
	if zpad < 0 {
		zpad = 0
	}
	return lvCat(dsi, prs, make([]byte, zpad), ci, sid)
}

// cpaceGenerator is G_Ristretto255.calculate_generator(SHA-512, PRS, CI, sid):
// the element derived from SHA-512(generator_string(...)), whose 64 bytes
// are 2 * field_size_bytes.
func cpaceGenerator(prs, ci, sid []byte) group.Element {
	h := sha512.Sum512(generatorString([]byte(cpaceDSI), prs, ci, sid, cpaceHashBlock))
	return elementDerivation(&h)
}

// elementDerivation is ristretto255's element derivation from 64 uniform
// bytes (RFC 9496, section 4.3.4): MAP(b[0:32]) + MAP(b[32:64]), where MAP
// is the Elligator map of section 4.3.4 (which ignores bit 255).
func elementDerivation(b *[64]byte) group.Element {
	var half [32]byte
	var p0, p1 r255.Point
	copy(half[:], b[:32])
	p0.SetElligator(&half)
	copy(half[:], b[32:])
	p1.SetElligator(&half)
	p0.Add(&p0, &p1)
	var enc [32]byte
	p0.BytesInto(&enc)
	e := group.Ristretto255.NewElement()
	if err := e.UnmarshalBinary(enc[:]); err != nil {
		// A canonical encoding made by the same library always decodes.
		panic("security: ristretto255 element does not decode its own encoding: " + err.Error())
	}
	return e
}

// cpaceSampleScalar is G.sample_scalar() as the draft recommends for
// ristretto255: 32 random bytes with the bits above group_size_bits (252)
// cleared, read as a little-endian integer (which is then below the group
// order, so always a canonical scalar).
func cpaceSampleScalar() group.Scalar {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24 and later)
	s, err := cpaceScalar(b)
	if err != nil {
		panic(err) // cannot happen: b is below 2^252 < group order
	}
	return s
}

// cpaceScalar reads a scalar as cpaceSampleScalar makes one: b with bits 252
// to 255 cleared, little-endian.
func cpaceScalar(b [32]byte) (group.Scalar, error) {
	b[31] &= 0x0f
	s := group.Ristretto255.NewScalar()
	if err := s.UnmarshalBinary(b[:]); err != nil {
		return nil, errors.New("security: CPace scalar is not canonical")
	}
	return s, nil
}

// cpaceScalarMult is G.scalar_mult(y, g): encode(y * g).
func cpaceScalarMult(y group.Scalar, g group.Element) []byte {
	b, _ := group.Ristretto255.NewElement().Mul(g, y).MarshalBinary() // cannot fail
	return b
}

// cpaceScalarMultVfy is G.scalar_mult_vfy(y, X) followed by the draft's
// abort check: it returns encode(y * decode(X)), or errCPaceInvalidPoint if
// X does not decode or the result is the identity G.I.
func cpaceScalarMultVfy(y group.Scalar, x []byte) ([]byte, error) {
	X := group.Ristretto255.NewElement()
	if len(x) != cpacePointLen || X.UnmarshalBinary(x) != nil {
		return nil, errCPaceInvalidPoint
	}
	K := group.Ristretto255.NewElement().Mul(X, y)
	if K.IsIdentity() {
		return nil, errCPaceInvalidPoint
	}
	b, _ := K.MarshalBinary() // cannot fail
	return b, nil
}

// transcriptIR is the draft's transcript_ir(Ya, ADa, Yb, ADb):
// lv_cat(Ya, ADa) || lv_cat(Yb, ADb).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// cpaceISK is the intermediate session key in the initiator-responder
// setting: SHA-512(lv_cat(DSI || "_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb)).
func cpaceISK(sid, k, ya, ada, yb, adb []byte) [64]byte {
	in := lvCat([]byte(cpaceDSI+"_ISK"), sid, k)
	in = append(in, transcriptIR(ya, ada, yb, adb)...)
	return sha512.Sum512(in)
}
