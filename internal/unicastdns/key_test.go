package unicastdns_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/unicastdns"
)

const bindKey = `key "nearnet-update" {
	algorithm hmac-sha256;
	secret "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IDMyYg==";
};
`

func TestParseKeyFile(t *testing.T) {
	k, err := unicastdns.ParseKeyFile([]byte("# made by tsig-keygen\n" + bindKey))
	if err != nil {
		t.Fatalf("ParseKeyFile: %v", err)
	}
	if k.Name != "nearnet-update" || k.Algorithm != "hmac-sha256" || string(k.Secret) != "secret secret secret secret 32b" {
		t.Fatalf("key = %+v", k)
	}
	if s := k.String(); strings.Contains(s, "secret secret") {
		t.Fatalf("String shows the secret: %s", s)
	}
	k2, err := unicastdns.ParseKeyFile([]byte("nearnet-update:hmac-sha256:c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IDMyYg==\n"))
	if err != nil || k2.Name != k.Name || !bytes.Equal(k2.Secret, k.Secret) {
		t.Fatalf("one-line key file = %+v, %v", k2, err)
	}
	for _, bad := range []string{
		"",
		`key "a" { algorithm hmac-sha256; };`,
		`key "a" { secret "c2VjcmV0"; };`,
		`key "a" { algorithm hmac-sha256; secret "!!"; };`,
		`key "a" { algorithm hmac-md4; secret "c2VjcmV0"; };`,
		`key "a" { algorithm hmac-sha256; secret "c2VjcmV0"; }; key "b" { };`,
		`key "a" { algorithm hmac-sha256; secret "c2VjcmV0"; `,
		`key "a" { algorithm hmac-sha256; secret "c2VjcmV0; };`,
		`/* open`,
	} {
		_, err := unicastdns.ParseKeyFile([]byte(bad))
		var ke *unicastdns.KeyFileError
		if !errors.As(err, &ke) {
			t.Errorf("ParseKeyFile(%q) = %v, want a KeyFileError", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestParseKey(t *testing.T) {
	k, err := unicastdns.ParseKey("k1:hmac-sha512:c2VjcmV0")
	if err != nil || k.Name != "k1" || k.Algorithm != "hmac-sha512" || string(k.Secret) != "secret" {
		t.Fatalf("ParseKey = %+v, %v", k, err)
	}
	if k, err := unicastdns.ParseKey("k1:c2VjcmV0"); err != nil || k.Algorithm != "" {
		t.Fatalf("name:secret = %+v, %v", k, err)
	}
	for _, bad := range []string{"", "k1", "k1:hmac-sha256:", ":hmac-sha256:c2VjcmV0", "k1:rot13:c2VjcmV0", "k1:hmac-sha256:@@@"} {
		if _, err := unicastdns.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestLoadKeyFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	path := filepath.Join(t.TempDir(), "tsig.key")
	if err := os.WriteFile(path, []byte(bindKey), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := unicastdns.LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadKeyFile of a 0644 file = %v, want a refusal", err)
	}
	os.Chmod(path, 0o600)
	if k, err := unicastdns.LoadKeyFile(path); err != nil || k.Name != "nearnet-update" {
		t.Fatalf("LoadKeyFile = %+v, %v", k, err)
	}
	if _, err := unicastdns.LoadKeyFile(filepath.Dir(path)); err == nil {
		t.Fatal("LoadKeyFile of a directory succeeded")
	}
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte(bindKey))
	f.Add([]byte("k:hmac-sha1:c2VjcmV0"))
	f.Add([]byte("/* c */ key \"a\" { // x\n algorithm hmac-sha256; secret \"c2VjcmV0\"; };"))
	f.Add([]byte(`key "a" { algorithm hmac-sha256; secret "c2VjcmV0"; `))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := unicastdns.ParseKeyFile(data)
		if err != nil {
			return
		}
		if err := k.Validate("k"); err != nil {
			t.Fatalf("parsed an invalid key %v: %v", k, err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add("k1:hmac-sha256:c2VjcmV0")
	f.Add("k1:c2VjcmV0")
	f.Add("::")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := unicastdns.ParseKey(s)
		if err != nil {
			return
		}
		if err := k.Validate("k"); err != nil {
			t.Fatalf("parsed an invalid key %v: %v", k, err)
		}
	})
}

// TestParseKeyFileFromBIND parses what BIND's own tools write, for every
// algorithm, when they are installed (Debian's bind9).
func TestParseKeyFileFromBIND(t *testing.T) {
	if _, err := exec.LookPath("tsig-keygen"); err != nil {
		netns.Require(t, "tsig-keygen (Debian package bind9) in $PATH", false)
	}
	for _, alg := range []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"} {
		out, err := exec.Command("tsig-keygen", "-a", alg, "key-"+alg).Output()
		if err != nil {
			t.Fatalf("tsig-keygen -a %s: %v", alg, err)
		}
		k, err := unicastdns.ParseKeyFile(out)
		if err != nil || k.Name != "key-"+alg || k.Algorithm != alg || len(k.Secret) == 0 {
			t.Fatalf("ParseKeyFile(tsig-keygen -a %s) = %v, %v", alg, k, err)
		}
	}
	out, err := exec.Command("ddns-confgen", "-q", "-k", "ddns-key").Output()
	if err != nil {
		t.Fatalf("ddns-confgen -q: %v", err)
	}
	if k, err := unicastdns.ParseKeyFile(out); err != nil || k.Name != "ddns-key" {
		t.Fatalf("ParseKeyFile(ddns-confgen -q) = %v, %v", k, err)
	}
}
