package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWideAreaFlagErrors: the wide-area flags are checked before anything
// is opened, each mistake a usage error naming the flag, and no error shows
// a TSIG secret.
func TestWideAreaFlagErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, []byte("k:hmac-sha256:c2VjcmV0c2VjcmV0"), 0o644)
	for _, tc := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"listen", "--insecure", "--dns-server", "10.0.0.53"}, "need --domain", true},
		{[]string{"browse", "--tsig", "k:hmac-sha256:c2VjcmV0c2VjcmV0"}, "need --domain", true},
		{[]string{"browse", "--domain", "example.test"}, "--domain needs --dns-server", true},
		{[]string{"browse", "--domain", "example.test", "--dns-server", "10.0.0.53", "--tsig", "k:hmac-sha256:c2VjcmV0c2VjcmV0", "--dns-key", open}, "give one", true},
		{[]string{"browse", "--domain", "example.test", "--dns-server", "10.0.0.53", "--tsig", "k:rot13:c2VjcmV0c2VjcmV0"}, "invalid --tsig", true},
		{[]string{"browse", "--domain", "example.test", "--dns-server", "10.0.0.53", "--tsig", "k:hmac-sha256:!!notbase64"}, "invalid --tsig", true},
		{[]string{"browse", "--domain", "local", "--dns-server", "10.0.0.53"}, "invalid --domain", true},
		{[]string{"browse", "--domain", "example.test", "--dns-server", "10.0.0.53", "--dns-refresh", "10ms"}, "invalid --dns-refresh", true},
		{[]string{"browse", "--domain", "example.test", "--dns-server", "10.0.0.53", "--dns-key", open}, "chmod 600", false},
		{[]string{"browse", "--domain", "example.test", "--dns-server", "10.0.0.53", "--dns-key", filepath.Join(dir, "none")}, "--dns-key", false},
	} {
		_, _, err := run(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nearnet %s: error %v; want one containing %q", strings.Join(tc.args, " "), err, tc.want)
			continue
		}
		var ue *UsageError
		if errors.As(err, &ue) != tc.usage {
			t.Errorf("nearnet %s: %v: usage error %v, want %v", strings.Join(tc.args, " "), err, !tc.usage, tc.usage)
		}
		if strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("nearnet %s: error shows the secret: %v", strings.Join(tc.args, " "), err)
		}
	}
}

// TestWideAreaDoctorIgnores: doctor, which checks the link, accepts the
// wide-area flags and ignores them (a registration with its hidden nodes
// would contradict Hidden).
func TestWideAreaDoctorIgnores(t *testing.T) {
	t.Parallel()
	_, _, err := run(t, nil, "doctor", "--interface", "lo", "--timeout", "100ms", "--domain", "example.test",
		"--dns-server", "127.0.0.1:1", "--tsig", "k:hmac-sha256:c2VjcmV0c2VjcmV0")
	var ue *UsageError
	if errors.As(err, &ue) || err != nil && strings.Contains(err.Error(), "TSIG") {
		t.Fatalf("doctor with wide-area flags: %v", err)
	}
}
