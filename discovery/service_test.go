package discovery

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"
)

func TestValidateServiceType(t *testing.T) {
	good := []string{"_nearnet._tcp", "_nearnet._udp", "_a._tcp", "_http._tcp", "_x-1._udp", "_abcdefghijklmno._tcp", "_1a._tcp", "_NearNet._tcp"}
	for _, s := range good {
		if err := ValidateServiceType(s); err != nil {
			t.Errorf("ValidateServiceType(%q) = %v", s, err)
		}
	}
	bad := map[string]string{
		"":                       "want",
		"nearnet._tcp":           `start with "_"`,
		"_nearnet":               "want",
		"_nearnet._sctp":         "_tcp",
		"_nearnet._tcp.local.":   "want",
		"__tcp":                  "want",
		"_._tcp":                 "1-15",
		"_abcdefghijklmnop._tcp": "1-15",
		"_-abc._tcp":             "hyphen",
		"_abc-._tcp":             "hyphen",
		"_a--b._tcp":             "two hyphens",
		"_123._tcp":              "letter",
		"_a_b._tcp":              "letters, digits",
		"_a.b._tcp":              "want",
	}
	for s, reason := range bad {
		err := ValidateServiceType(s)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "Service.Type" || fe.Value != s || !strings.Contains(err.Error(), reason) {
			t.Errorf("ValidateServiceType(%q) = %v, want a Service.Type error about %q", s, err, reason)
		}
	}
}

func TestValidateInstance(t *testing.T) {
	for _, s := range []string{"a", "Living Room", "Ünïcödé ☃", "dots.and\\backslash", strings.Repeat("x", 63)} {
		if err := ValidateInstance(s); err != nil {
			t.Errorf("ValidateInstance(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", strings.Repeat("x", 64), "bad\xff", "nl\n", "del\x7f"} {
		var fe *FieldError
		if err := ValidateInstance(s); !errors.As(err, &fe) || fe.Field != "Service.Instance" {
			t.Errorf("ValidateInstance(%q) = %v", s, err)
		}
	}
}

func TestInstanceNameEscaping(t *testing.T) {
	for _, inst := range []string{"Plain", "With Space", "dot.ted", `back\slash`, "(paren);@\"", "Ünï ☃", "tab-free\x7e"} {
		full := instanceName(inst, "_x._tcp", "local.")
		label, rest, ok := splitFirstLabel(full)
		if !ok || label != inst || rest != "_x._tcp.local." {
			t.Errorf("%q -> %q -> (%q, %q, %v)", inst, full, label, rest, ok)
		}
		// Through the wire and miekg/dns's own escaping.
		p, err := parsePacket(rawResponse(wireRR(t, newPTR("_x._tcp.local.", full, 10))))
		if err != nil || len(p.records) != 1 {
			t.Fatalf("parse %q: %v", full, err)
		}
		if got, _, _ := splitFirstLabel(p.records[0].rr.(*dns.PTR).Ptr); got != inst {
			t.Errorf("%q came back from the wire as %q", inst, got)
		}
	}
}

func TestRenames(t *testing.T) {
	if got := renameInstance("Box", 2); got != "Box (2)" {
		t.Errorf("renameInstance = %q", got)
	}
	long := strings.Repeat("é", 31) // 62 bytes
	got := renameInstance(long, 12)
	if len(got) > 63 || !utf8.ValidString(got) || !strings.HasSuffix(got, " (12)") {
		t.Errorf("renameInstance(long) = %q (%d bytes)", got, len(got))
	}
	if got := renameHost("box.local.", 3); got != "box-3.local." {
		t.Errorf("renameHost = %q", got)
	}
	for in, want := range map[string]string{"box": "box.local.", "box.local": "box.local.", "Box.Local.": "Box.Local."} {
		if got, err := normalizeHost(in); err != nil || got != want {
			t.Errorf("normalizeHost(%q) = %q, %v", in, got, err)
		}
	}
}
