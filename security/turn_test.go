package security

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLoadTURNCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	u, p, err := LoadTURNCredentials(write("ok", "# coturn\nalice:s3cr:et\n", 0o600))
	if err != nil || u != "alice" || p != "s3cr:et" {
		t.Fatalf("got %q %q %v", u, p, err)
	}
	var pe *ParseError
	if _, _, err := LoadTURNCredentials(write("bad", "alice-no-password\n", 0o600)); !errors.As(err, &pe) {
		t.Fatalf("got %v, want a ParseError", err)
	}
	if _, _, err := LoadTURNCredentials(write("empty", "# nothing\n", 0o600)); !errors.As(err, &pe) {
		t.Fatalf("got %v, want a ParseError", err)
	}
	if runtime.GOOS != "windows" {
		_, _, err := LoadTURNCredentials(write("open", "alice:topsecret\n", 0o644))
		if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "topsecret") {
			t.Fatalf("got %v, want a permission error without the password", err)
		}
	}
}
