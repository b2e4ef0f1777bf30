package resource

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// Framing of the control messages: a 4-byte big-endian length, then that
// many bytes of one JSON object. The content bytes travel unframed between
// the start message and the trailer.
const (
	version      = 1
	maxFrame     = 64 << 10 // largest control message body
	minFrame     = 2        // "{}"
	maxSize      = 1<<53 - 1
	hexSHA256Len = 2 * 32
)

// The messages as they appear on the wire. Decoders ignore unknown fields,
// so a later version may add some.
type (
	offerMsg struct {
		V    int               `json:"v"`
		Name string            `json:"name"`
		Size *int64            `json:"size"`
		Meta map[string]string `json:"meta,omitempty"`
	}
	replyMsg struct {
		Accept bool   `json:"accept"`
		Offset int64  `json:"offset,omitempty"`
		Prefix string `json:"prefix_sha256,omitempty"`
		Code   string `json:"code,omitempty"`
		Reason string `json:"reason,omitempty"`
	}
	startMsg struct {
		Offset *int64 `json:"offset"`
	}
	trailerMsg struct {
		SHA256 string `json:"sha256"`
	}
	resultMsg struct {
		OK    bool   `json:"ok"`
		Code  string `json:"code,omitempty"`
		Error string `json:"error,omitempty"`
	}
)

// MarshalJSON writes an acceptance's offset even when it is 0: PROTOCOL.md
// section 13 says an acceptance carries it, and a peer may decode it into
// a non-optional field (Swift's Codable). A rejection carries none.
func (m replyMsg) MarshalJSON() ([]byte, error) {
	type plain replyMsg
	if !m.Accept {
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		Accept bool   `json:"accept"`
		Offset int64  `json:"offset"`
		Prefix string `json:"prefix_sha256,omitempty"`
	}{true, m.Offset, m.Prefix})
}

// reply is a decoded replyMsg.
type reply struct {
	accept bool
	offset int64
	prefix [32]byte // SHA-256 of the receiver's first offset bytes, if offset > 0
	code   string
	reason string
}

// appendFrame appends the frame carrying v to b.
func appendFrame(b []byte, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	if len(body) > maxFrame {
		return b, fmt.Errorf("nearnet: resource message is %d bytes; at most %d allowed (shorten the name or Meta)", len(body), maxFrame)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...), nil
}

// writeFrame writes v as one frame in one Write.
func writeFrame(w io.Writer, v any) error {
	b, err := appendFrame(nil, v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// readFrame reads one frame's body. It never allocates more than maxFrame.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < minFrame || n > maxFrame {
		return nil, protoErr("message length %d outside [%d, %d]", n, minFrame, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// unmarshalObject decodes a JSON object (not null, not an array) into v.
func unmarshalObject(what string, b []byte, v any) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return protoErr("%s is not a JSON object", what)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return protoErr("%s: %v", what, err)
	}
	return nil
}

func decodeSHA256(what, s string) ([32]byte, error) {
	var sum [32]byte
	if len(s) != hexSHA256Len {
		return sum, protoErr("%s is %d characters; want %d hex digits", what, len(s), hexSHA256Len)
	}
	if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return sum, protoErr("%s: %v", what, err)
	}
	return sum, nil
}

// decodeOffer decodes and checks an offer, its name normalized to NFC
// (NormalizeName) first. A bad name is a *NameError,
// anything else a *ProtocolError (with code "version" for a version this
// side does not speak).
func decodeOffer(b []byte) (Offer, error) {
	var m offerMsg
	if err := unmarshalObject("offer", b, &m); err != nil {
		return Offer{}, err
	}
	if m.V != version {
		return Offer{}, &ProtocolError{What: fmt.Sprintf("offer has version %d; this receiver speaks %d", m.V, version), code: codeVersion}
	}
	if m.Size == nil {
		return Offer{}, protoErr("offer has no size")
	}
	if *m.Size < 0 || *m.Size > maxSize {
		return Offer{}, protoErr("offer size %d outside [0, 2^53-1]", *m.Size)
	}
	m.Name = NormalizeName(m.Name)
	if err := checkName(m.Name); err != nil {
		return Offer{}, err
	}
	if len(m.Meta) == 0 {
		m.Meta = nil // "meta":{} and no meta mean the same
	}
	return Offer{Name: m.Name, Size: *m.Size, Meta: m.Meta}, nil
}

// decodeReply decodes the receiver's answer to an offer of size bytes.
func decodeReply(b []byte, size int64) (reply, error) {
	var m replyMsg
	if err := unmarshalObject("reply", b, &m); err != nil {
		return reply{}, err
	}
	if !m.Accept {
		return reply{code: m.Code, reason: m.Reason}, nil
	}
	r := reply{accept: true, offset: m.Offset}
	if m.Offset < 0 || m.Offset > size {
		return reply{}, protoErr("accept offset %d outside [0, %d]", m.Offset, size)
	}
	if m.Offset > 0 {
		sum, err := decodeSHA256("prefix_sha256", m.Prefix)
		if err != nil {
			return reply{}, err
		}
		r.prefix = sum
	}
	return r, nil
}

// decodeStart decodes the sender's start message; offered is the offset
// the receiver proposed. The sender either takes it or starts from 0.
func decodeStart(b []byte, offered int64) (int64, error) {
	var m startMsg
	if err := unmarshalObject("start", b, &m); err != nil {
		return 0, err
	}
	if m.Offset == nil {
		return 0, protoErr("start has no offset")
	}
	if off := *m.Offset; off != 0 && off != offered {
		return 0, protoErr("start offset %d; must be 0 or the accepted %d", off, offered)
	}
	return *m.Offset, nil
}

func decodeTrailer(b []byte) ([32]byte, error) {
	var m trailerMsg
	if err := unmarshalObject("trailer", b, &m); err != nil {
		return [32]byte{}, err
	}
	return decodeSHA256("trailer sha256", m.SHA256)
}

// decodeResult returns nil for success and a *ReceiverError for failure.
func decodeResult(b []byte) error {
	var m resultMsg
	if err := unmarshalObject("result", b, &m); err != nil {
		return err
	}
	if m.OK {
		return nil
	}
	if m.Error == "" {
		m.Error = fmt.Sprintf("no reason given (code %q)", m.Code)
	}
	return &ReceiverError{Code: m.Code, Message: m.Error}
}
