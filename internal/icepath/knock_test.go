package icepath

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/wire"
)

var (
	srflx = "candidate:1 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 0.0.0.0 rport 40000"
	relay = "candidate:2 1 udp 16777215 198.51.100.1 49200 typ relay raddr 203.0.113.7 rport 40001"
	host  = "candidate:3 1 udp 2130706431 10.0.0.2 40000 typ host"
)

func offer() *wire.ICE {
	return &wire.ICE{Gen: 7, Ufrag: "abcdEFGH", Pwd: strings.Repeat("p", 32), Candidates: []string{host, relay, srflx}}
}

func TestKnockRoundTrip(t *testing.T) {
	b, err := encodeKnock(offer())
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeKnock(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.Gen != 7 || len(m.Candidates) != 2 || m.Candidates[0] != srflx || m.Candidates[1] != relay {
		t.Fatalf("decoded %+v; want gen 7 and srflx then relay, no host", m)
	}
	if _, err := decodeKnock(b, true); err == nil {
		t.Fatal("an offer taken as an answer")
	}
}

func TestKnockBounds(t *testing.T) {
	m := offer()
	for i := 0; i < 20; i++ {
		m.Candidates = append(m.Candidates, relay)
	}
	b, err := encodeKnock(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)+len(knockMagicLen) > ice.MaxKnock {
		t.Fatalf("knock of %d bytes", len(b)+len(knockMagicLen))
	}
	for _, c := range []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"garbage", "\xff\xfe garbage"},
		{"not an object", "[1,2]"},
		{"host candidate", `{"gen":1,"ufrag":"abcd","pwd":"` + strings.Repeat("p", 22) + `","cands":["` + host + `"]}`},
		{"no candidates", `{"gen":1,"ufrag":"abcd","pwd":"` + strings.Repeat("p", 22) + `","cands":[]}`},
		{"mailbox", `{"gen":1,"ufrag":"abcd","pwd":"` + strings.Repeat("p", 22) + `","cands":["` + relay + `"],"mailbox":"10.0.0.1:5"}`},
		{"too long", `{"gen":1,"ufrag":"` + strings.Repeat("u", 1300) + `"}`},
	} {
		_, err := decodeKnock([]byte(c.body), false)
		var ke *KnockError
		if !errors.As(err, &ke) {
			t.Errorf("%s: %v; want a *KnockError", c.name, err)
		}
	}
}

func FuzzDecodeKnock(f *testing.F) {
	b, _ := encodeKnock(offer())
	f.Add(b, false)
	a := offer()
	a.Answer = true
	b, _ = encodeKnock(a)
	f.Add(b, true)
	f.Add([]byte(`{"gen":1}`), false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, body []byte, answer bool) {
		m, err := decodeKnock(body, answer)
		if err != nil {
			return
		}
		again, err := encodeKnock(m)
		if err != nil {
			t.Fatalf("a decoded knock does not encode: %v", err)
		}
		if _, err := decodeKnock(again, answer); err != nil {
			t.Fatalf("re-encoded knock does not decode: %v", err)
		}
	})
}

// TestAdmitBounds: offers from knocks are bounded by maxOffers at once and
// by the token bucket (offerBurst at once, offerRate a second after); a
// repeated offer is answered again without counting; a finished one frees
// its place.
func TestAdmitBounds(t *testing.T) {
	var f firstState
	f.init()
	t0 := f.refill
	from := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(49152+i))
	}
	var taken []*offerState
	for i := 0; i < maxOffers+3; i++ {
		st, _, ok := f.admit(from(i), "ufrag", t0)
		if ok != (i < maxOffers) {
			t.Fatalf("offer %d: admitted %v; want the first %d only", i, ok, maxOffers)
		}
		if ok {
			taken = append(taken, st)
		}
	}
	// A repeat of a taken offer: its answer again, once ready, no place.
	taken[0].answer = []byte("answer")
	if st, resend, ok := f.admit(from(0), "ufrag", t0); ok || st != nil || string(resend) != "answer" {
		t.Fatalf("repeated offer: %v %q %v; want the answer again and nothing new", st, resend, ok)
	}
	// Places free up, but the bucket is empty until time passes.
	for i, st := range taken {
		f.done(from(i), st)
	}
	if _, _, ok := f.admit(from(100), "ufrag", t0); ok {
		t.Fatal("an offer admitted with the bucket empty")
	}
	later := t0.Add(time.Second)
	n := 0
	for i := 0; i < 10; i++ {
		if _, _, ok := f.admit(from(200+i), "ufrag", later); ok {
			n++
		}
	}
	if n != offerRate {
		t.Fatalf("%d offers admitted a second later; want %d (offerRate)", n, offerRate)
	}
	if f.dropped == 0 {
		t.Fatal("no offer counted as dropped")
	}
}
