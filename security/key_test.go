package security

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const keyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey()
	if a == b || a == (Key{}) {
		t.Fatalf("GenerateKey returned %v twice or zero", a)
	}
	back, err := ParseKey(a.String())
	if err != nil || back != a {
		t.Fatalf("round trip = %v, %v", back, err)
	}
	if s := a.String(); len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String = %q, want 64 lowercase hex digits", s)
	}
}

func TestParseKey(t *testing.T) {
	k, err := ParseKey(strings.ToUpper(keyHex))
	if err != nil || k.String() != keyHex {
		t.Fatalf("ParseKey(upper) = %v, %v", k, err)
	}
	for _, tt := range []struct{ in, detail string }{
		{"", "got 0"},
		{keyHex[:63], "got 63"},
		{keyHex + "0", "got 65"},
		{keyHex[:10] + "x" + keyHex[11:], "character 11 is not a hex digit"},
		{" " + keyHex, "character 1 is not a hex digit"},
		{strings.Repeat("0", 64), "all-zero key"},
	} {
		_, err := ParseKey(tt.in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseKey(%q) err = %v, want a *ParseError", tt.in, err)
			continue
		}
		mustContain(t, err.Error(), "invalid pre-shared key: expected 64 hex digits (256 bits), ", tt.detail)
		if strings.Contains(err.Error(), keyHex[:16]) || pe.Input != "" {
			t.Errorf("error %q shows key material", err)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good", "# nearnet pre-shared key\r\n\r\n   \t"+strings.ToUpper(keyHex)+"  \r\n# trailing\n")
	k, err := LoadKeyFile(good)
	if err != nil || k.String() != keyHex {
		t.Fatalf("LoadKeyFile = %v, %v", k, err)
	}

	short := write("short", "#\n\n"+keyHex[:62]+"\n")
	_, err = LoadKeyFile(short)
	mustContain(t, errString(err), short+":3: ", "expected 64 hex digits (256 bits), got 62")
	if strings.Contains(errString(err), keyHex[:16]) {
		t.Errorf("error %q shows key material", err)
	}

	empty := write("empty", "# only a comment\n\n")
	_, err = LoadKeyFile(empty)
	mustContain(t, errString(err), empty, "no key found")

	_, err = LoadKeyFile(filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}

	if runtime.GOOS != "windows" {
		open := write("open", keyHex+"\n")
		os.Chmod(open, 0o604)
		_, err = LoadKeyFile(open)
		mustContain(t, errString(err), open, "0604", "chmod 600")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func FuzzParseKey(f *testing.F) {
	f.Add(keyHex)
	f.Add(strings.ToUpper(keyHex))
	f.Add(strings.Repeat("0", 64))
	f.Add(keyHex[:63])
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Input != "" {
				t.Fatalf("error %v is not a *ParseError without input", err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q contains the input", err)
			}
			return
		}
		if k.String() != strings.ToLower(s) {
			t.Fatalf("%q parsed to %v", s, k)
		}
	})
}
