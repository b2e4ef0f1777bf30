package discovery

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestEncodeTXT(t *testing.T) {
	got, err := EncodeTXT(map[string]string{"b": "2", "a": "1", "empty": ""})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=1", "b=2", "empty="}; !slices.Equal(got, want) {
		t.Errorf("EncodeTXT = %q, want %q", got, want)
	}
	got, err = EncodeTXTEntries([]TXTEntry{{Key: "txtvers", Value: "1"}, {Key: "flag", Bool: true}, {Key: "bin", Value: "\x00\xff="}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"txtvers=1", "flag", "bin=\x00\xff="}; !slices.Equal(got, want) {
		t.Errorf("EncodeTXTEntries = %q, want %q", got, want)
	}
}

func TestEncodeTXTErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		m      map[string]string
		key    string
		reason string
	}{
		{map[string]string{"": "v"}, "", "empty"},
		{map[string]string{"a=b": "v"}, "a=b", "'='"},
		{map[string]string{"k\x01": "v"}, "k\x01", "printable"},
		{map[string]string{"héllo": "v"}, "héllo", "printable"},
		{map[string]string{"long": strings.Repeat("v", 251)}, "long", "255"},
		{map[string]string{"Key": "1", "key": "2"}, "key", "duplicate"},
	}
	for _, c := range cases {
		_, err := EncodeTXT(c.m)
		var te *TXTError
		if !errors.As(err, &te) || te.Key != c.key || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("EncodeTXT(%q) = %v, want a TXTError for key %q mentioning %q", c.m, err, c.key, c.reason)
		}
	}
	if _, err := EncodeTXT(map[string]string{"k": strings.Repeat("v", 253)}); err != nil {
		t.Errorf("a 255-byte entry was rejected: %v", err)
	}
	if _, err := EncodeTXTEntries([]TXTEntry{{Key: "b", Bool: true, Value: "x"}}); err == nil {
		t.Error("boolean entry with a value accepted")
	}
	big := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		big[k] = strings.Repeat("x", 250)
	}
	var te *TXTError
	if _, err := EncodeTXT(big); !errors.As(err, &te) || !strings.Contains(err.Error(), "1300") {
		t.Errorf("oversized TXT: %v", err)
	}
}

func TestDecodeTXTIsTolerant(t *testing.T) {
	got := DecodeTXT([]string{"", "=novalue", "Key=first", "KEY=second", "flag", "empty=", "eq=a=b", "bin=\x00\xff"})
	want := map[string]string{"key": "first", "flag": "", "empty": "", "eq": "a=b", "bin": "\x00\xff"}
	if !txtEqual(got, want) {
		t.Errorf("DecodeTXT = %q, want %q", got, want)
	}
	if DecodeTXT(nil) != nil || DecodeTXT([]string{""}) != nil {
		t.Error("empty TXT should decode to nil")
	}
}

func TestTXTWireRoundTrip(t *testing.T) {
	m := map[string]string{"id": "abc", "quote": `say "hi" \ bye`, "bin": "\x00\x01\xfe\xff"}
	enc, err := EncodeTXT(m)
	if err != nil {
		t.Fatal(err)
	}
	rr := newTXT("x.local.", enc, 10)
	p, err := parsePacket(rawResponse(wireRR(t, rr)))
	if err != nil || p.bad != 0 || len(p.records) != 1 {
		t.Fatalf("parse: %v %+v", err, p)
	}
	if got := DecodeTXT(txtStrings(p.records[0].rr.(*dns.TXT))); !txtEqual(got, m) {
		t.Errorf("round trip = %q, want %q", got, m)
	}
}

func FuzzDecodeTXT(f *testing.F) {
	for _, m := range []map[string]string{
		{"id": "0123456789abcdef", "v": "1", "tr": "ws,quic"},
		{"a": "", "B": "x=y"},
		nil,
	} {
		enc, _ := EncodeTXT(m)
		f.Add(strings.Join(enc, "\x00"))
	}
	enc, _ := EncodeTXTEntries([]TXTEntry{{Key: "flag", Bool: true}, {Key: "k", Value: "\xff"}})
	f.Add(strings.Join(enc, "\x00"))
	f.Fuzz(func(t *testing.T, joined string) {
		m := DecodeTXT(strings.Split(joined, "\x00"))
		for k := range m {
			if k == "" || strings.Contains(k, "=") || k != strings.ToLower(k) {
				t.Fatalf("bad decoded key %q", k)
			}
		}
		// What decodes and is valid encodes back to the same thing.
		if enc, err := EncodeTXT(m); err == nil {
			if back := DecodeTXT(enc); !txtEqual(back, m) {
				t.Fatalf("round trip %q -> %q -> %q", m, enc, back)
			}
		}
	})
}
