package wire

import (
	"errors"
	"strings"
	"testing"
)

func validICE() *ICE {
	return &ICE{Gen: 1, Ufrag: "abcd", Pwd: strings.Repeat("p", 22),
		Candidates: []string{"candidate:1 1 udp 1694498815 10.200.1.2 40000 typ srflx raddr 0.0.0.0 rport 40000"}}
}

func TestICERoundTrip(t *testing.T) {
	b, err := AppendICE(nil, validICE())
	if err != nil {
		t.Fatal(err)
	}
	if Kind(b[0]) != KindICE || KindICE < 0x80 {
		t.Fatalf("kind %#x: must be an extension kind", b[0])
	}
	m, err := ParseICE(b[1:])
	if err != nil || m.Gen != 1 || m.Ufrag != "abcd" || len(m.Candidates) != 1 {
		t.Fatalf("%+v, %v", m, err)
	}
	for _, bad := range []string{
		``, `[]`, `{"ufrag":"abc","pwd":"pppppppppppppppppppppp"}`,
		`{"ufrag":"abcd","pwd":"short"}`,
		`{"ufrag":"ab d","pwd":"pppppppppppppppppppppp"}`,
		`{"ufrag":"abcd","pwd":"pppppppppppppppppppppp","cands":[""]}`,
		`{"ufrag":"abcd","pwd":"pppppppppppppppppppppp","gen":-1}`,
	} {
		var ie *ICEError
		if _, err := ParseICE([]byte(bad)); !errors.As(err, &ie) {
			t.Errorf("%s: got %v, want an ICEError", bad, err)
		}
	}
}

func FuzzICE(f *testing.F) {
	b, _ := AppendICE(nil, validICE())
	f.Add(b[1:])
	f.Add([]byte(`{"gen":4294967295,"answer":true,"ufrag":"abcd","pwd":"pppppppppppppppppppppp","cands":[]}`))
	f.Add([]byte(`{"ufrag":7}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseICE(b)
		if err != nil {
			return
		}
		e, err := AppendICE(nil, m)
		if err != nil {
			t.Fatalf("accepted %+v, which does not encode: %v", m, err)
		}
		if _, err := ParseICE(e[1:]); err != nil {
			t.Fatalf("re-encoded message rejected: %v", err)
		}
	})
}
