package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// EnvInterop names the environment variable that turns skips into failures:
// with NEARNET_INTEROP=required, a test whose prerequisites are missing fails
// instead of skipping. CI sets it so interop tests can never be skipped there
// silently.
const EnvInterop = "NEARNET_INTEROP"

// InteropRequired reports whether NEARNET_INTEROP=required is set.
func InteropRequired() bool {
	return os.Getenv(EnvInterop) == "required"
}

// Require skips the test with "needs <what>" unless ok. When NEARNET_INTEROP
// is "required" it fails the test instead, so a missing prerequisite is never
// mistaken for a pass. what should say what is missing and why, e.g.
// "root and iproute2: running as uid 1000".
func Require(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if InteropRequired() {
		t.Fatalf("needs %s (%s=required, so this test may not be skipped)", what, EnvInterop)
	}
	t.Skipf("needs %s", what)
}

// RequireCommands calls [Require] for every named program that is not in
// $PATH (absolute paths are checked as they are).
func RequireCommands(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	Require(t, fmt.Sprintf("%s (not found in $PATH)", strings.Join(missing, ", ")), len(missing) == 0)
}
