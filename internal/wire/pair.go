package wire

// Pairing by a short code (PROTOCOL.md, section 16): two messages each way
// between the upgrade and the hello. Their bodies are the security
// package's: the CPace message lv_cat(Y, AD) and the 64-byte
// confirmation tag. The wire checks only their sizes; security decodes and
// checks the rest.

// Message kinds of the pairing exchange.
const (
	KindPair        Kind = 0x07 // the sender's CPace message
	KindPairConfirm Kind = 0x08 // the sender's key-confirmation tag
)

// Sizes of the pairing messages' bodies.
const (
	MaxPairMessage = 1 + 32 + 1 + 127 // lv_cat(Y, AD) with at most 127 bytes of AD
	minPairMessage = 1 + 32 + 1
	PairTagLen     = 64 // HMAC-SHA-512
)

// ClosePairingFailed closes a link whose pairing failed; the reason says
// why (PROTOCOL.md, section 16).
const ClosePairingFailed = 4007

// AppendPair appends a pairing message of kind k with body b.
func AppendPair(dst []byte, k Kind, b []byte) []byte {
	return append(append(dst, byte(k)), b...)
}

// ParsePair checks a handshake message of kind KindPair or KindPairConfirm
// (kind byte included) and returns its kind and body.
func ParsePair(p []byte) (Kind, []byte, error) {
	if len(p) == 0 {
		return 0, nil, protoErr("empty pairing message")
	}
	k, b := Kind(p[0]), p[1:]
	switch k {
	case KindPair:
		if len(b) < minPairMessage || len(b) > MaxPairMessage {
			return 0, nil, protoErr("pairing message of %d bytes, want %d to %d", len(b), minPairMessage, MaxPairMessage)
		}
	case KindPairConfirm:
		if len(b) != PairTagLen {
			return 0, nil, protoErr("pairing confirmation of %d bytes, want %d", len(b), PairTagLen)
		}
	default:
		return 0, nil, protoErr("message kind %#x where a pairing message belongs", byte(k))
	}
	return k, b, nil
}
