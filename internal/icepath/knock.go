package icepath

import (
	"fmt"
	"strings"

	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/wire"
)

// First contact (PROTOCOL.md section 18, "First contact"): a dialer that
// found a peer's mailbox in its wide-area record knocks on it with an ICE
// offer as the knock's body, and the peer answers with a knock carrying
// its answer. A body is the JSON of an ICE message (kind 0x80's, without
// the kind byte) with at most maxKnockCandidates candidates, each
// server-reflexive or relayed, in one UDP payload (ice.MaxKnock).

// maxKnockCandidates bounds the candidates of a knock's description.
const maxKnockCandidates = 8

// encodeKnock encodes m as a knock's body, keeping only the candidates a
// knock may carry and as many of them as fit.
func encodeKnock(m *wire.ICE) ([]byte, error) {
	c := *m
	c.Candidates = knockCandidates(m.Candidates)
	for {
		b, err := wire.AppendICE(nil, &c)
		if err != nil {
			return nil, err
		}
		b = b[1:] // no kind byte
		if len(b)+len(knockMagicLen) <= ice.MaxKnock || len(c.Candidates) == 0 {
			if len(b)+len(knockMagicLen) > ice.MaxKnock {
				return nil, ice.ErrKnockTooLarge
			}
			return b, nil
		}
		c.Candidates = c.Candidates[:len(c.Candidates)-1]
	}
}

// knockMagicLen stands for the knock's magic in size checks.
const knockMagicLen = "\x00nearnet-knock\x00"

// knockCandidates keeps the server-reflexive and relayed candidates of
// cs, at most maxKnockCandidates, relayed ones after the others.
func knockCandidates(cs []string) []string {
	var srflx, relay []string
	for _, c := range cs {
		switch candType(c) {
		case "srflx":
			srflx = append(srflx, c)
		case "relay":
			relay = append(relay, c)
		}
	}
	out := append(srflx, relay...)
	if len(out) > maxKnockCandidates {
		out = out[:maxKnockCandidates]
	}
	return out
}

// candType is the type of an RFC 8839 candidate attribute ("typ X"), or
// "" if it has none.
func candType(c string) string {
	f := strings.Fields(c)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "typ" {
			return f[i+1]
		}
	}
	return ""
}

// KnockError is a knock's body that cannot be used. The knock is ignored.
type KnockError struct{ What string }

func (e *KnockError) Error() string { return "nearnet: bad knock: " + e.What }

// decodeKnock decodes and checks a knock's body: an offer when answer is
// false, else an answer.
func decodeKnock(body []byte, answer bool) (*wire.ICE, error) {
	if len(body)+len(knockMagicLen) > ice.MaxKnock {
		return nil, &KnockError{fmt.Sprintf("%d bytes, at most %d", len(body)+len(knockMagicLen), ice.MaxKnock)}
	}
	if len(body) == 0 {
		return nil, &KnockError{"no description (a bare knock)"}
	}
	m, err := wire.ParseICE(body)
	if err != nil {
		return nil, &KnockError{err.Error()}
	}
	switch {
	case m.Answer != answer:
		return nil, &KnockError{fmt.Sprintf("answer is %v, want %v", m.Answer, answer)}
	case len(m.Candidates) == 0:
		return nil, &KnockError{"no candidates"}
	case len(m.Candidates) > maxKnockCandidates:
		return nil, &KnockError{fmt.Sprintf("%d candidates, at most %d", len(m.Candidates), maxKnockCandidates)}
	case m.Mailbox != "":
		return nil, &KnockError{"a mailbox in a knock"}
	}
	for _, c := range m.Candidates {
		if t := candType(c); t != "srflx" && t != "relay" {
			return nil, &KnockError{fmt.Sprintf("a candidate of type %q: a knock carries srflx and relay only", t)}
		}
	}
	return m, nil
}
