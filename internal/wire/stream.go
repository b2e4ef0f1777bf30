package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// Streams (PROTOCOL.md, "Streams"). A stream is a TCP connection of its
// own (TLS over TCP unless the security mode is none) that the side which
// dialed the session's link opens to the same address. Its first bytes are
// StreamMagic and a StreamOpen; the listener answers with a StreamAnswer;
// then the connection carries the stream's bytes, unframed.
//
// When the listening side wants a stream, it sends a StreamRequest over the
// link (message kind KindStreamRequest) and the dialing side opens the
// connection with Reply set; if it cannot, it answers KindStreamRefused.

// Message kinds of the stream handshake on the link.
const (
	KindStreamRequest Kind = 0x04 // JSON StreamRequest, listener to dialer
	KindStreamRefused Kind = 0x05 // JSON StreamRefused, dialer to listener
)

// StreamMagic opens a stream connection, where a link's upgrade request
// would begin with "GET ".
const StreamMagic = "NNS1"

// Limits on stream names and metadata.
const (
	MaxStreamNameLen = 1024
	maxStreamFrame   = 16 << 10
)

// Stream kinds: what the stream carries.
const (
	StreamKindBytes    = ""         // application bytes (OpenStream)
	StreamKindResource = "resource" // one resource transfer (SendResource)
)

// StreamOpen is the first frame on a stream connection, from the dialer.
type StreamOpen struct {
	Handle string            `json:"handle"`          // names the link: 32 lowercase hex digits
	ID     uint64            `json:"id"`              // the opener's stream number
	Reply  bool              `json:"reply,omitempty"` // answers the listener's StreamRequest with this ID
	Name   string            `json:"name,omitempty"`
	Meta   map[string]string `json:"meta,omitempty"`
	Kind   string            `json:"kind,omitempty"`
	Proof  []byte            `json:"proof"` // HMAC-SHA256, base64 in JSON
}

// StreamAnswer is the listener's answer to a StreamOpen.
type StreamAnswer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Proof []byte `json:"proof,omitempty"`
}

// StreamRequest asks the link's dialer to open a stream connection.
type StreamRequest struct {
	ID   uint64            `json:"id"`
	Name string            `json:"name,omitempty"`
	Meta map[string]string `json:"meta,omitempty"`
	Kind string            `json:"kind,omitempty"`
}

// StreamRefused tells the listener that its StreamRequest failed.
type StreamRefused struct {
	ID    uint64 `json:"id"`
	Error string `json:"error"`
}

// StreamError reports a malformed stream handshake frame.
type StreamError struct{ What string }

func (e *StreamError) Error() string { return "nearnet: bad stream handshake: " + e.What }

func checkStreamFields(name string, meta map[string]string, kind string) error {
	if len(name) > MaxStreamNameLen || !utf8.ValidString(name) {
		return &StreamError{"name must be UTF-8 of at most 1024 bytes"}
	}
	if len(meta) > MaxMetaKeys {
		return &StreamError{"more than 64 metadata keys"}
	}
	n := 0
	for k, v := range meta {
		if k == "" {
			return &StreamError{"empty metadata key"}
		}
		n += len(k) + len(v)
	}
	if n > MaxMetaLen {
		return &StreamError{"metadata larger than 4 KiB"}
	}
	if kind != StreamKindBytes && kind != StreamKindResource {
		return &StreamError{fmt.Sprintf("unknown stream kind %q", kind)}
	}
	return nil
}

// CheckStream reports whether a stream's name, metadata and kind are
// within the limits, so an opener learns before sending anything.
func CheckStream(name string, meta map[string]string, kind string) error {
	return checkStreamFields(name, meta, kind)
}

// appendFrame appends v as a 2-byte big-endian length and JSON.
func appendStreamFrame(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) > maxStreamFrame {
		return nil, &StreamError{"frame larger than 16 KiB"}
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...), nil
}

func readStreamFrame(r io.Reader, v any) error {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > maxStreamFrame {
		return &StreamError{"frame larger than 16 KiB"}
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return unexpected(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &StreamError{"not a JSON object: " + err.Error()}
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendStreamOpen appends StreamMagic and the encoded StreamOpen.
func AppendStreamOpen(dst []byte, o *StreamOpen) ([]byte, error) {
	if err := checkStreamFields(o.Name, o.Meta, o.Kind); err != nil {
		return nil, err
	}
	return appendStreamFrame(append(dst, StreamMagic...), o)
}

// ReadStreamOpen reads StreamMagic and a StreamOpen, and checks its form.
func ReadStreamOpen(r io.Reader) (*StreamOpen, error) {
	var magic [len(StreamMagic)]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, err
	}
	if string(magic[:]) != StreamMagic {
		return nil, &StreamError{"no stream magic"}
	}
	var o StreamOpen
	if err := readStreamFrame(r, &o); err != nil {
		return nil, unexpected(err)
	}
	if len(o.Handle) != 32 || !isLowerHex(o.Handle) {
		return nil, &StreamError{"handle must be 32 lowercase hex digits"}
	}
	if len(o.Proof) != 32 {
		return nil, &StreamError{"proof must be 32 bytes"}
	}
	if o.Reply && (o.Name != "" || o.Meta != nil || o.Kind != "") {
		return nil, &StreamError{"a reply carries no name, metadata or kind"}
	}
	if err := checkStreamFields(o.Name, o.Meta, o.Kind); err != nil {
		return nil, err
	}
	return &o, nil
}

// AppendStreamAnswer appends the encoded answer.
func AppendStreamAnswer(dst []byte, a *StreamAnswer) ([]byte, error) {
	return appendStreamFrame(dst, a)
}

// ReadStreamAnswer reads the listener's answer and checks its form.
func ReadStreamAnswer(r io.Reader) (*StreamAnswer, error) {
	var a StreamAnswer
	if err := readStreamFrame(r, &a); err != nil {
		return nil, err
	}
	if a.OK && len(a.Proof) != 32 {
		return nil, &StreamError{"an accepting answer carries a 32-byte proof"}
	}
	if !a.OK && a.Error == "" {
		return nil, &StreamError{"a refusing answer says why"}
	}
	return &a, nil
}

// AppendStreamRequest appends a stream request message, kind byte included.
func AppendStreamRequest(dst []byte, q *StreamRequest) ([]byte, error) {
	if err := checkStreamFields(q.Name, q.Meta, q.Kind); err != nil {
		return nil, err
	}
	b, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	return append(append(dst, byte(KindStreamRequest)), b...), nil
}

// ParseStreamRequest decodes a stream request's body (after the kind byte).
func ParseStreamRequest(body []byte) (*StreamRequest, error) {
	if len(body) > maxStreamFrame {
		return nil, &StreamError{"request larger than 16 KiB"}
	}
	var q StreamRequest
	if err := json.Unmarshal(body, &q); err != nil {
		return nil, &StreamError{"request is not a JSON object: " + err.Error()}
	}
	if err := checkStreamFields(q.Name, q.Meta, q.Kind); err != nil {
		return nil, err
	}
	return &q, nil
}

// AppendStreamRefused appends a refusal message, kind byte included.
func AppendStreamRefused(dst []byte, r *StreamRefused) []byte {
	if len(r.Error) > 1024 {
		r = &StreamRefused{ID: r.ID, Error: r.Error[:1024]}
	}
	b, _ := json.Marshal(r) // cannot fail: a number and a string
	return append(append(dst, byte(KindStreamRefused)), b...)
}

// ParseStreamRefused decodes a refusal's body (after the kind byte).
func ParseStreamRefused(body []byte) (*StreamRefused, error) {
	if len(body) > maxStreamFrame {
		return nil, &StreamError{"refusal larger than 16 KiB"}
	}
	var r StreamRefused
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &StreamError{"refusal is not a JSON object: " + err.Error()}
	}
	return &r, nil
}
