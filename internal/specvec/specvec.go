// Package specvec reads the test vectors in PROTOCOL.md's appendix, so that
// the tests of each package assert the document's own numbers: when the
// code and the document disagree, a test fails.
//
// A vector is a line in the appendix indented by four spaces:
//
//	name = value
//
// where name is lowercase letters, digits, '.' and '_', and value is the
// rest of the line.
package specvec

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// appendix is the heading the vectors follow.
const appendix = "## Appendix A. Test vectors"

var line = regexp.MustCompile(`^    ([a-z0-9_.]+) += (.+)$`)

// Vectors holds the appendix's vectors by name.
type Vectors struct {
	t testing.TB
	m map[string]string
}

// Load reads PROTOCOL.md from the module's root (found from the working
// directory upwards).
func Load(t testing.TB) *Vectors {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("specvec: no go.mod above the working directory")
		}
		dir = parent
	}
	f, err := os.Open(filepath.Join(dir, "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := &Vectors{t: t, m: map[string]string{}}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := sc.Text()
		if strings.HasPrefix(s, "## ") {
			in = s == appendix
			continue
		}
		if m := line.FindStringSubmatch(s); in && m != nil {
			v.m[m[1]] = strings.TrimSpace(m[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(v.m) == 0 {
		t.Fatalf("specvec: PROTOCOL.md has no vectors under %q", appendix)
	}
	return v
}

// Get returns the vector name; a missing one fails the test.
func (v *Vectors) Get(name string) string {
	v.t.Helper()
	s, ok := v.m[name]
	if !ok {
		v.t.Fatalf("PROTOCOL.md has no test vector %q", name)
	}
	return s
}

// Check fails the test unless the vector name equals got.
func (v *Vectors) Check(name, got string) {
	v.t.Helper()
	if want := v.Get(name); want != got {
		v.t.Errorf("PROTOCOL.md's %s = %s, the code computes %s", name, want, got)
	}
}
