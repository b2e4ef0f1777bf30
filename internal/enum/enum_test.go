package enum

import "testing"

func TestName(t *testing.T) {
	type kind int
	for _, c := range []struct {
		k    kind
		want string
	}{{0, "a"}, {1, "b"}, {2, "kind(2)"}, {3, "d"}, {4, "kind(4)"}, {-1, "kind(-1)"}} {
		if got := Name(c.k, "kind", "a", "b", "", "d"); got != c.want {
			t.Errorf("Name(%d) = %q, want %q", c.k, got, c.want)
		}
	}
}
