package security

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const fpHex = "3b0c9a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5ae1"

func TestParseFingerprintForms(t *testing.T) {
	want, err := ParseFingerprint("sha256:" + fpHex)
	if err != nil {
		t.Fatal(err)
	}
	if want.String() != "sha256:"+fpHex {
		t.Fatalf("String = %q", want.String())
	}
	upper := strings.ToUpper(fpHex)
	var colons []string
	for i := 0; i < len(upper); i += 2 {
		colons = append(colons, upper[i:i+2])
	}
	for _, s := range []string{
		fpHex,
		upper,
		"SHA256:" + upper,
		strings.Join(colons, ":"),
		"sha256:" + strings.ToLower(strings.Join(colons, ":")),
	} {
		got, err := ParseFingerprint(s)
		if err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
}

func TestParseFingerprintRejects(t *testing.T) {
	for _, tt := range []struct{ in, detail string }{
		{"", "got 0 hex digits"},
		{"sha256:", "got 0 hex digits"},
		{fpHex[:62], "got 62 hex digits"},
		{fpHex + "00", "got 66 hex digits"},
		{"sha1:" + fpHex, "got a sha1 digest; only sha256 is supported"},
		{"SHA-512:" + fpHex, "got a SHA-512 digest; only sha256 is supported"},
		{"sha256 " + fpHex, `character 1 is 's', not a hex digit`},
		{"sha256:" + fpHex[:10] + "g" + fpHex[11:], `character 18 is 'g', not a hex digit`},
		{" " + fpHex, `character 1 is ' ', not a hex digit`},
		{fpHex + "\n", `character 65 is '\n', not a hex digit`},
		{"ab:cd:e", "got 5 hex digits"},
		{"abc:d", `character 3 is 'c' where a colon belongs`},
		{strings.Repeat("ab:", 32), "got a colon after the last digit pair"},
	} {
		_, err := ParseFingerprint(tt.in)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.What != "fingerprint" {
			t.Errorf("ParseFingerprint(%q) err = %v, want a *ParseError", tt.in, err)
			continue
		}
		mustContain(t, err.Error(), `expected "sha256:" and 64 hex digits`, tt.detail)
	}
}

func TestFingerprintText(t *testing.T) {
	fp := newTestIdentity(t).Fingerprint()
	b, err := json.Marshal(map[string]Fingerprint{"peer": fp})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"peer":"` + fp.String() + `"}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var back map[string]Fingerprint
	if err := json.Unmarshal(b, &back); err != nil || back["peer"] != fp {
		t.Fatalf("round trip = %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"peer":"sha256:00"}`), &back); err == nil {
		t.Fatal("unmarshalled a short fingerprint")
	}
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add("sha256:" + fpHex)
	f.Add(strings.ToUpper(fpHex))
	f.Add("3B:0C:9A:4F:5E:6D:7C:8B:9A:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:E1")
	f.Add(Fingerprint{}.String())
	f.Add("sha256:ab:")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		back, err := ParseFingerprint(fp.String())
		if err != nil || back != fp {
			t.Fatalf("%q parsed to %v, which does not round-trip: %v, %v", s, fp, back, err)
		}
		if !strings.EqualFold(strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "sha256:"), ":", ""), fp.String()[7:]) {
			t.Fatalf("%q parsed to %v", s, fp)
		}
	})
}
