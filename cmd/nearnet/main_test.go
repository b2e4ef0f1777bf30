package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the command: with this variable set, it runs
// main with its arguments instead of the tests.
const envRunMain = "NEARNET_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	return cmd
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string // prefix
	}{
		{[]string{"keygen"}, 0, ""},
		{[]string{"fly"}, 2, "usage: nearnet"},
		{[]string{"listen", "--port", "70000"}, 2, "nearnet: listen: invalid value"},
		{[]string{"listen", "--key-file", "/nonexistent/key"}, 1, "nearnet: --key-file: "},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stderr strings.Builder
		cmd := command(ctx, tc.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.HasPrefix(stderr.String(), tc.stderr) {
			t.Errorf("nearnet %s: exit %d, stderr %q; want exit %d, stderr starting %q",
				strings.Join(tc.args, " "), code, stderr.String(), tc.code, tc.stderr)
		}
	}
}

// TestInterrupt: SIGINT ends listen gracefully, with exit status 0.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := command(ctx, "listen", "--insecure", "--json", "--interface", "lo", "--service", "_nnmaintest._tcp")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, `"event":"ready"`) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("first line %q, %v; want the ready event (stderr %q)", line, err, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("listen after SIGINT: %v (stderr %q); want exit 0", err, stderr.String())
	}
}
