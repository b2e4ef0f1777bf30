package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the first byte of every nearnet message, which travels as one
// WebSocket binary message.
type Kind byte

// Message kinds. Kinds 0x80 and above are extensions: a receiver that does
// not know one ignores it. An unknown kind below 0x80 is a protocol error.
const (
	KindHello Kind = 0x01 // JSON [Hello]; the first message each way
	KindData  Kind = 0x02 // an application message
	KindBase  Kind = 0x03 // 8-byte sequence number of the next data message
	KindAck   Kind = 0x06 // 8-byte count of data messages received (PROTOCOL.md, "Session resume")
)

// MaxHelloLen bounds an encoded hello.
const MaxHelloLen = 16 << 10

// Hello is the first message each side sends after the upgrade. It is JSON
// so that other implementations (an Apple app, a script) can produce it with
// their standard library. Unknown fields are ignored.
type Hello struct {
	Version int               `json:"version"`        // 1 sent; any integer >= 1 accepted (ParseHello)
	Peer    string            `json:"peer"`           // 32 lowercase hex digits
	Name    string            `json:"name,omitempty"` // instance name, UTF-8, at most 63 bytes
	Meta    map[string]string `json:"meta,omitempty"` // application metadata
	Proof   []byte            `json:"proof,omitempty"`
	Caps    []string          `json:"caps,omitempty"` // capabilities (reserved)

	// The sender's datagram flow (PROTOCOL.md, "Datagrams"): the UDP port
	// it receives on and the session ID, 16 lowercase hex digits, that
	// datagrams to it carry. Absent when it does not do datagrams.
	UDPPort    int    `json:"udp_port,omitempty"`
	UDPSession string `json:"udp_session,omitempty"`

	// Session resume (PROTOCOL.md, "Session resume"): Boot names the
	// sender's running node, 16 lowercase hex digits, new at each start.
	// Resume is present when the sender continues a session with the
	// receiver whose Boot it names.
	Boot   string  `json:"boot,omitempty"`
	Resume *Resume `json:"resume,omitempty"`
}

// Resume asks to continue a session after its connection broke.
type Resume struct {
	PeerBoot string `json:"peer_boot"` // the receiver's Boot when the session began
	Recv     uint64 `json:"recv"`      // data messages the sender has received in the session
}

// Limits on what a hello may carry.
const (
	MaxNameLen  = 63
	MaxMetaKeys = 64
	MaxMetaLen  = 4096 // keys and values together
)

// HelloError reports a hello that cannot be accepted.
type HelloError struct{ What string }

func (e *HelloError) Error() string { return "nearnet: bad hello: " + e.What }

// AppendHello appends the encoded hello message, kind byte included.
func AppendHello(dst []byte, h *Hello) ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	return append(append(dst, byte(KindHello)), b...), nil
}

// Version is the protocol version this implementation speaks, the
// highest it answers with.
const Version = 1

// ProofLen is the length of a PSK proof, an HMAC-SHA256.
const ProofLen = 32

// helloIn is a hello as received: version and proof are decoded by hand so
// that a wrong one is named as such, not as malformed JSON.
type helloIn struct {
	Hello
	Version json.RawMessage `json:"version"`
	Proof   *string         `json:"proof"`
}

// ParseHello decodes and checks a hello message's body (after the kind
// byte). It checks form only; the session checks identity and proof.
// Any integer version from 1 up is accepted (PROTOCOL.md section 6): the
// answer names the highest version both speak, and the dialer checks it
// with [Hello.CheckAnswer].
func ParseHello(body []byte) (*Hello, error) {
	if len(body) > MaxHelloLen {
		return nil, &HelloError{"longer than 16 KiB"}
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, &HelloError{"not a JSON object"}
	}
	var in helloIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &HelloError{jsonFault(err)}
	}
	h := in.Hello
	v := strings.TrimSpace(string(in.Version))
	if v == "" || v == "null" {
		return nil, &HelloError{"missing version"}
	}
	ver, err := strconv.Atoi(v)
	if err != nil {
		return nil, &HelloError{fmt.Sprintf("version %s is not a JSON integer", truncate(v, 20))}
	}
	if ver < 1 {
		return nil, &HelloError{fmt.Sprintf("unsupported version %d: versions start at 1; this peer speaks %d", ver, Version)}
	}
	h.Version = ver
	if in.Proof != nil {
		p, err := base64.StdEncoding.DecodeString(*in.Proof)
		if err != nil {
			return nil, &HelloError{"proof is not valid base64 (standard alphabet, with = padding)"}
		}
		if len(p) != ProofLen {
			return nil, &HelloError{fmt.Sprintf("proof is %d bytes, want %d (an HMAC-SHA256)", len(p), ProofLen)}
		}
		h.Proof = p
	}
	if len(h.Peer) != 32 || !isLowerHex(h.Peer) {
		return nil, &HelloError{"peer must be 32 lowercase hex digits"}
	}
	if len(h.Name) > MaxNameLen || !utf8.ValidString(h.Name) {
		return nil, &HelloError{"name must be UTF-8 of at most 63 bytes"}
	}
	if len(h.Meta) > MaxMetaKeys {
		return nil, &HelloError{"more than 64 metadata keys"}
	}
	n := 0
	for k, v := range h.Meta {
		n += len(k) + len(v)
		if k == "" {
			return nil, &HelloError{"empty metadata key"}
		}
	}
	if n > MaxMetaLen {
		return nil, &HelloError{"metadata larger than 4 KiB"}
	}
	if (h.UDPPort == 0) != (h.UDPSession == "") {
		return nil, &HelloError{"udp_port and udp_session go together"}
	}
	if h.UDPPort != 0 {
		if h.UDPPort < 1 || h.UDPPort > 65535 {
			return nil, &HelloError{"udp_port out of range"}
		}
		if len(h.UDPSession) != 16 || !isLowerHex(h.UDPSession) || h.UDPSession == "0000000000000000" {
			return nil, &HelloError{"udp_session must be 16 lowercase hex digits, not all zero"}
		}
	}
	if h.Boot != "" && (len(h.Boot) != 16 || !isLowerHex(h.Boot)) {
		return nil, &HelloError{"boot must be 16 lowercase hex digits"}
	}
	if h.Resume != nil && (h.Boot == "" || len(h.Resume.PeerBoot) != 16 || !isLowerHex(h.Resume.PeerBoot)) {
		return nil, &HelloError{"resume needs boot and a peer_boot of 16 lowercase hex digits"}
	}
	return &h, nil
}

// CheckAnswer checks the version of the listener's hello, read by the
// dialer: the listener answers with the highest version both speak, so
// anything but this implementation's Version (it offered no other) is an
// error.
func (h *Hello) CheckAnswer() error {
	if h.Version != Version {
		return &HelloError{fmt.Sprintf("the listener answered version %d to an offer of %d", h.Version, Version)}
	}
	return nil
}

// jsonFault names what was wrong with a hello that did not decode.
func jsonFault(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "value of another type"
		switch te.Type.Kind() {
		case reflect.String:
			want = "string"
		case reflect.Int, reflect.Int64, reflect.Uint64:
			want = "integer"
		case reflect.Map, reflect.Struct:
			want = "object"
		case reflect.Slice:
			want = "array"
		}
		if te.Field != "" {
			return fmt.Sprintf("field %q must be a JSON %s, not %s", strings.TrimPrefix(te.Field, "Hello."), want, te.Value)
		}
	}
	return "not valid JSON: " + err.Error()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// AppendBase appends a base message body (kind byte included): the sequence
// number the next data message on this connection carries.
func AppendBase(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, byte(KindBase)), seq)
}

// ParseBase decodes a base message's body.
func ParseBase(body []byte) (uint64, error) {
	if len(body) != 8 {
		return 0, protoErr("base message of %d bytes, want 8", len(body))
	}
	return binary.BigEndian.Uint64(body), nil
}

// AppendAck appends an ack message body (kind byte included): the count of
// data messages received so far in the session.
func AppendAck(dst []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, byte(KindAck)), n)
}

// ParseAck decodes an ack message's body.
func ParseAck(body []byte) (uint64, error) {
	if len(body) != 8 {
		return 0, protoErr("ack message of %d bytes, want 8", len(body))
	}
	return binary.BigEndian.Uint64(body), nil
}
