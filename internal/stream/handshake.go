package stream

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Stream handshake labels (PROTOCOL.md, "Streams").
const (
	keyLabel      = "EXPORTER-nearnet-stream-key"
	exporterLabel = "EXPORTER-nearnet-stream"
)

// Keys derives a link's stream key and handle from its TLS session (or,
// with SecurityNone, from its WebSocket key wsKey, which protects nothing,
// as nothing is protected in that mode).
func Keys(wsKey string, cs *tls.ConnectionState) (key [32]byte, handle string, err error) {
	if cs != nil {
		k, err := cs.ExportKeyingMaterial(keyLabel, nil, 32)
		if err != nil {
			return key, "", err
		}
		copy(key[:], k)
	} else {
		key = sha256.Sum256([]byte("nearnet-stream-none\x00" + wsKey))
	}
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("handle"))
	return key, hex.EncodeToString(m.Sum(nil)[:16]), nil
}

// Proof binds a stream connection's TLS session (its exporter) to the
// link's key, so that only the two peers of the link can tie a stream to
// it, and a relay between two TLS sessions cannot.
func Proof(key *[32]byte, role string, exporter []byte, o *wire.StreamOpen) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("nearnet-stream-v1 " + role + "\x00"))
	m.Write(exporter)
	m.Write([]byte(o.Handle))
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], o.ID)
	if o.Reply {
		b[8] = 1
	}
	m.Write(b[:])
	return m.Sum(nil)
}

// Exporter returns a stream's own TLS exporter, nil without TLS (or where
// the stream shares its link's TLS session).
func Exporter(cs *tls.ConnectionState) ([]byte, error) {
	if cs == nil {
		return nil, nil
	}
	return cs.ExportKeyingMaterial(exporterLabel, nil, 32)
}

// RefusedError is the acceptor's refusal of a stream open.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "stream refused: " + e.Reason }

// Open runs the opener's side of the stream handshake over st (exp: its
// own TLS session's exporter, or nil): the StreamOpen o with its proof
// over the link's key and handle, the acceptor's answer and its proof.
func Open(ctx context.Context, st transport.Stream, key *[32]byte, handle string, exp []byte, o *wire.StreamOpen) error {
	o.Handle = handle
	o.Proof = Proof(key, "client", exp, o)
	b, err := wire.AppendStreamOpen(nil, o)
	if err != nil {
		return err
	}
	if _, err := st.Write(b); err != nil {
		return err
	}
	a, err := wire.ReadStreamAnswer(st)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return err
	}
	if !a.OK {
		return &RefusedError{Reason: a.Error}
	}
	if !hmac.Equal(a.Proof, Proof(key, "server", exp, o)) {
		return errors.New("the peer's stream proof does not match: not the connection's peer")
	}
	st.SetDeadline(time.Time{})
	return nil
}

// Refuse answers a stream open with msg and closes st; it returns msg as
// an error.
func Refuse(st transport.Stream, msg string) error {
	b, _ := wire.AppendStreamAnswer(nil, &wire.StreamAnswer{Error: msg})
	st.SetWriteDeadline(time.Now().Add(time.Second))
	st.Write(b)
	st.Close()
	return errors.New(msg)
}

// ReadOpen reads the opener's StreamOpen from br (what was read of st). A
// malformed open is refused; the error says why.
func ReadOpen(st transport.Stream, br *bufio.Reader) (*wire.StreamOpen, error) {
	o, err := wire.ReadStreamOpen(br)
	if err != nil {
		var se *wire.StreamError
		if errors.As(err, &se) {
			return nil, Refuse(st, err.Error())
		}
		st.Close()
		return nil, err
	}
	if br.Buffered() > 0 {
		return nil, Refuse(st, "bytes after the stream open before the answer")
	}
	return o, nil
}

// CheckProof reports whether o's proof is the opener's over key and exp.
func CheckProof(key *[32]byte, exp []byte, o *wire.StreamOpen) bool {
	return hmac.Equal(o.Proof, Proof(key, "client", exp, o))
}

// Accept answers o as accepted, with the acceptor's proof, and clears
// st's deadline.
func Accept(st transport.Stream, key *[32]byte, exp []byte, o *wire.StreamOpen) error {
	b, _ := wire.AppendStreamAnswer(nil, &wire.StreamAnswer{OK: true, Proof: Proof(key, "server", exp, o)})
	_, err := st.Write(b)
	st.SetDeadline(time.Time{})
	return err
}
