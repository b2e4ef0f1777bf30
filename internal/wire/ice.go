package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// KindICE carries one side's ICE description between peers already in a
// session (PROTOCOL.md, "Paths beyond the LAN"): an extension kind, so a
// peer that does not know it ignores it.
const KindICE Kind = 0x80

// CapICE, in a hello's caps, says the sender takes part in the in-session
// ICE exchange.
const CapICE = "ice"

// Limits on an ICE description.
const (
	MaxICELen        = 16 << 10
	MaxICECandidates = 32
	maxICEField      = 256
	maxICECandidate  = 512
)

// ICE is one side's ICE description (RFC 8445 credentials, RFC 8839
// candidate attributes without "a="). The link's dialer sends the offer,
// the other side answers with Answer set; Gen numbers the exchange, so an
// answer is matched to its offer and a later exchange replaces an
// earlier one.
type ICE struct {
	Gen        uint32   `json:"gen"`
	Answer     bool     `json:"answer,omitempty"`
	Ufrag      string   `json:"ufrag"`
	Pwd        string   `json:"pwd"`
	Candidates []string `json:"cands"`
	// Mailbox is the sender's TURN mailbox (PROTOCOL.md section 18): a
	// relayed "ip:port" the peer knocks on after it moved; empty if none.
	Mailbox string `json:"mailbox,omitempty"`
}

// ICEError reports an ICE message that cannot be used.
type ICEError struct{ What string }

func (e *ICEError) Error() string { return "nearnet: bad ICE message: " + e.What }

// AppendICE appends the encoded message, kind byte included.
func AppendICE(dst []byte, m *ICE) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(append(dst, byte(KindICE)), b...), nil
}

// ParseICE decodes and checks the body of an ICE message (after the kind
// byte).
func ParseICE(body []byte) (*ICE, error) {
	if len(body) > MaxICELen {
		return nil, &ICEError{"longer than 16 KiB"}
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, &ICEError{"not a JSON object"}
	}
	var m ICE
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, &ICEError{jsonFault(err)}
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// check enforces RFC 8445's credential lengths (ufrag at least 4
// characters, pwd at least 22) and the limits above.
func (m *ICE) check() error {
	switch {
	case len(m.Ufrag) < 4 || len(m.Ufrag) > maxICEField:
		return &ICEError{fmt.Sprintf("ufrag is %d bytes, want 4 to %d", len(m.Ufrag), maxICEField)}
	case len(m.Pwd) < 22 || len(m.Pwd) > maxICEField:
		return &ICEError{fmt.Sprintf("pwd is %d bytes, want 22 to %d", len(m.Pwd), maxICEField)}
	case !printable(m.Ufrag) || !printable(m.Pwd):
		return &ICEError{"ufrag and pwd must be printable ASCII"}
	case len(m.Mailbox) > 64:
		return &ICEError{"mailbox longer than 64 bytes"}
	case m.Mailbox != "" && !validAddrPort(m.Mailbox):
		return &ICEError{"mailbox is not an ip:port"}
	case len(m.Candidates) > MaxICECandidates:
		return &ICEError{fmt.Sprintf("%d candidates, at most %d", len(m.Candidates), MaxICECandidates)}
	}
	for _, c := range m.Candidates {
		if len(c) == 0 || len(c) > maxICECandidate || !utf8.ValidString(c) {
			return &ICEError{fmt.Sprintf("a candidate of %d bytes: want 1 to %d bytes of UTF-8", len(c), maxICECandidate)}
		}
	}
	return nil
}

func validAddrPort(s string) bool {
	ap, err := netip.ParseAddrPort(s)
	return err == nil && ap.Port() != 0
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
