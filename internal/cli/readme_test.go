package cli

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMECommands: every nearnet command line in README.md's shell
// examples names a command and flags that exist, with values they accept,
// so the examples cannot drift from the CLI. Each line runs as written
// with -h appended: the flags before it are all parsed (an unknown flag or
// a bad value is a UsageError), and then the command prints its help
// instead of touching the network. (What the commands then do is tested by
// the e2e and CLI tests that run them for real.) The synopsis block
// ("nearnet listen [--echo]   advertise, ...") is not an example and is
// skipped.
func TestREADMECommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	comment := regexp.MustCompile(`\s+#.*$`)
	n := 0
	for _, line := range strings.Split(string(readme), "\n") {
		code, ok := strings.CutPrefix(line, "    ")
		if !ok {
			continue
		}
		code = comment.ReplaceAllString(code, "")
		// The command after a subshell's set-up, before a redirection.
		if i := strings.Index(code, "nearnet "); i >= 0 {
			code = code[i:]
		} else {
			continue
		}
		code, _, _ = strings.Cut(code, ">")
		code, _, _ = strings.Cut(code, ")")
		code = strings.TrimSpace(code)
		if strings.Contains(code, "  ") || strings.Contains(code, "[") {
			continue // a synopsis: the command, its [options], what it does
		}
		args := strings.Fields(code)[1:]
		n++
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			err := Run(context.Background(), append(args, "-h"), strings.NewReader(""), io.Discard, io.Discard)
			if err != nil {
				t.Errorf("README: %s: %v", code, err)
			}
		})
	}
	if n < 10 {
		t.Fatalf("found %d command lines in README.md's examples; the parser missed them", n)
	}
}
