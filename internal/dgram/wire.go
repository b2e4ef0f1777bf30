package dgram

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
)

// Datagram kinds: the first byte of every datagram. A receiver drops a
// datagram of a kind it does not know (counted in [MuxDrops.Malformed]); a
// later protocol version takes new values.
const (
	kindSealed byte = 0x01 // AES-256-GCM sealed payload (security modes other than none)
	kindPlain  byte = 0x02 // plaintext payload (security mode none)
)

const (
	// HeaderLen is the length of the datagram header: kind, receiver
	// session ID, packet number.
	HeaderLen = 1 + 8 + 8
	// TagLen is the length of the AES-256-GCM authentication tag.
	TagLen = 16
	// SealedOverhead is what a sealed datagram adds to the payload.
	SealedOverhead = HeaderLen + TagLen
	// PlainOverhead is what a plaintext (insecure) datagram adds.
	PlainOverhead = HeaderLen
	// nonceLen is the AES-GCM nonce length.
	nonceLen = 12
)

var (
	errShort     = errors.New("shorter than the datagram header")
	errKind      = errors.New("unknown datagram kind")
	errTruncated = errors.New("shorter than header and tag")
	errAuth      = errors.New("authentication failed")
)

// header is the clear-text start of every datagram.
type header struct {
	kind    byte
	session SessionID // the receiver's session ID
	pn      uint64    // packet number: per flow and direction, from 0, never reused
}

func appendHeader(b []byte, h header) []byte {
	b = append(b, h.kind)
	b = binary.BigEndian.AppendUint64(b, uint64(h.session))
	return binary.BigEndian.AppendUint64(b, h.pn)
}

// parseHeader decodes the header of datagram b. It checks only what every
// kind shares: the length of the header and a known kind.
func parseHeader(b []byte) (header, error) {
	if len(b) < HeaderLen {
		return header{}, errShort
	}
	h := header{
		kind:    b[0],
		session: SessionID(binary.BigEndian.Uint64(b[1:9])),
		pn:      binary.BigEndian.Uint64(b[9:17]),
	}
	if h.kind != kindSealed && h.kind != kindPlain {
		return header{}, errKind
	}
	return h, nil
}

// nonceBuf holds an AES-GCM nonce: four zero bytes, then the packet number
// big-endian. A key is used by one sender for one flow only (see
// [ExporterContext]), so the packet number alone makes nonces unique. It is
// scratch space kept with its user, because a nonce on the stack escapes
// through the cipher.AEAD interface and would cost an allocation per
// datagram.
type nonceBuf [nonceLen]byte

func (n *nonceBuf) set(pn uint64) []byte {
	binary.BigEndian.PutUint64(n[4:], pn) // n[:4] stay zero
	return n[:]
}

// seal appends the sealed datagram for payload to b[:0] (its capacity is
// reused) and returns it.
func seal(aead cipher.AEAD, n *nonceBuf, b []byte, session SessionID, pn uint64, payload []byte) []byte {
	b = appendHeader(b[:0], header{kind: kindSealed, session: session, pn: pn})
	return aead.Seal(b, n.set(pn), payload, b[:HeaderLen])
}

// appendPlain appends the plaintext datagram for payload to b[:0].
func appendPlain(b []byte, session SessionID, pn uint64, payload []byte) []byte {
	b = appendHeader(b[:0], header{kind: kindPlain, session: session, pn: pn})
	return append(b, payload...)
}

// open authenticates and decrypts the sealed datagram b, whose header h was
// parsed by parseHeader, in place: the payload it returns aliases b, and b's
// ciphertext is overwritten whether or not it succeeds.
func open(aead cipher.AEAD, n *nonceBuf, h header, b []byte) ([]byte, error) {
	if h.kind != kindSealed {
		return nil, errAuth
	}
	if len(b) < SealedOverhead {
		return nil, errTruncated
	}
	ct := b[HeaderLen:]
	p, err := aead.Open(ct[:0], n.set(h.pn), ct, b[:HeaderLen])
	if err != nil {
		return nil, errAuth
	}
	return p, nil
}
