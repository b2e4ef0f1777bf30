package transport

import (
	"slices"
	"testing"
)

func TestInterleaveFamilies(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"[fe80::1%eth0]:1", "[fe80::2%eth0]:1", "10.0.0.1:1"}, []string{"[fe80::1%eth0]:1", "10.0.0.1:1", "[fe80::2%eth0]:1"}},
		{[]string{"10.0.0.1:1", "10.0.0.2:1", "[::1]:1", "mem:3"}, []string{"10.0.0.1:1", "[::1]:1", "10.0.0.2:1", "mem:3"}},
		{nil, []string{}},
	} {
		if got := InterleaveFamilies(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("InterleaveFamilies(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
