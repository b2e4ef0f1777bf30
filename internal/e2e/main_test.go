package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
	"go.uber.org/goleak"
)

const cliPackage = "github.com/nearnet/nearnet/cmd/nearnet"

var (
	nearnetBin string // the CLI built by TestMain
	cliMissing string // why there is no CLI to build; the tests skip then
	cliErr     error  // the CLI exists but did not build; the tests fail then
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nearnet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	buildCLI(dir)
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			return 1
		}
	}
	return code
}

// EnvBin names an environment variable that, when set, gives a nearnet
// binary to test instead of building cmd/nearnet (e.g. a release build).
const EnvBin = "NEARNET_E2E_BIN"

// buildCLI builds cmd/nearnet into dir, with -race when the tests run with
// it, unless NEARNET_E2E_BIN names a binary to use.
func buildCLI(dir string) {
	if bin := os.Getenv(EnvBin); bin != "" {
		if nearnetBin, cliErr = filepath.Abs(bin); cliErr == nil {
			_, cliErr = os.Stat(nearnetBin)
		}
		return
	}
	// The test runs in internal/e2e.
	if m, _ := filepath.Glob("../../cmd/nearnet/*.go"); len(m) == 0 {
		cliMissing = "the nearnet CLI (cmd/nearnet does not exist yet)"
		return
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		if goTool, err = exec.LookPath(filepath.Join(os.Getenv("GOROOT"), "bin", "go")); err != nil {
			cliErr = fmt.Errorf("cannot build the nearnet CLI: no go command in $PATH or $GOROOT/bin")
			return
		}
	}
	nearnetBin = filepath.Join(dir, "nearnet")
	args := []string{"build", "-o", nearnetBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, append(args, cliPackage)...).CombinedOutput(); err != nil {
		cliErr = fmt.Errorf("go build %s: %v\n%s", cliPackage, err, out)
	}
}

// cli returns the path of the built CLI. It skips the test (or fails it, see
// netns.Require) while cmd/nearnet does not exist, and fails it if the build
// failed.
func cli(t testing.TB) string {
	t.Helper()
	netns.Require(t, cliMissing, cliMissing == "")
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return nearnetBin
}
