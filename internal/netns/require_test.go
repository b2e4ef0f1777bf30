package netns

import (
	"fmt"
	"strings"
	"testing"
)

// recordTB records how Require ended a test.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	panic(r)
}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// record calls fn with a recordTB in place of t and returns it, to show
// whether and how fn ended the test.
func record(t testing.TB, fn func(r *recordTB)) (r *recordTB) {
	r = &recordTB{TB: t}
	defer func() {
		if v := recover(); v != nil && v != r {
			panic(v)
		}
	}()
	fn(r)
	return r
}

func runRequire(t *testing.T, ok bool) *recordTB {
	return record(t, func(r *recordTB) { Require(r, "root and iproute2: test", ok) })
}

func TestRequire(t *testing.T) {
	t.Setenv(EnvInterop, "")
	if r := runRequire(t, true); r.skipped != "" || r.failed != "" {
		t.Fatalf("ok: skipped %q, failed %q", r.skipped, r.failed)
	}
	if r := runRequire(t, false); r.skipped != "needs root and iproute2: test" || r.failed != "" {
		t.Fatalf("not ok: skipped %q, failed %q", r.skipped, r.failed)
	}
	t.Setenv(EnvInterop, "required")
	if r := runRequire(t, false); r.skipped != "" || !strings.Contains(r.failed, "needs root and iproute2: test") {
		t.Fatalf("required: skipped %q, failed %q", r.skipped, r.failed)
	}
}
