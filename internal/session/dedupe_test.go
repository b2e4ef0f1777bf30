package session

import "testing"

type dupLink struct {
	out bool
	key string
}

func (d dupLink) Outgoing() bool { return d.out }
func (d dupLink) Key() string    { return d.key }

// A simultaneous open: each side has its outgoing link and the peer's
// (incoming) one, with the key of whoever dialed it. Both must keep the
// same link, whichever order they compare them in.
func TestBetterAgreesOnBothSides(t *testing.T) {
	for _, keys := range [][2]string{{"a", "b"}, {"b", "a"}} {
		// Link 1 dialed by A, link 2 dialed by B.
		aSide := [2]Dup{dupLink{true, keys[0]}, dupLink{false, keys[1]}}
		bSide := [2]Dup{dupLink{false, keys[0]}, dupLink{true, keys[1]}}
		for _, aGreater := range []bool{true, false} {
			keepA := 1
			if Better(aGreater, aSide[0], aSide[1]) {
				keepA = 0
			}
			keepB := 1
			if Better(!aGreater, bSide[0], bSide[1]) {
				keepB = 0
			}
			if keepA != keepB {
				t.Errorf("keys %v, A greater %v: A keeps link %d, B keeps link %d", keys, aGreater, keepA+1, keepB+1)
			}
			// The order of comparison does not matter.
			if Better(aGreater, aSide[1], aSide[0]) == Better(aGreater, aSide[0], aSide[1]) {
				t.Errorf("keys %v: Better is not antisymmetric", keys)
			}
			// The greater side drops its outgoing link.
			if want := !aGreater; (keepA == 0) != want {
				t.Errorf("A greater %v: A kept link %d", aGreater, keepA+1)
			}
		}
	}
	// Two links the same way (a redial racing an earlier dial): the smaller
	// key wins on both sides.
	x, y := dupLink{true, "k1"}, dupLink{true, "k2"}
	px, py := dupLink{false, "k1"}, dupLink{false, "k2"}
	for _, g := range []bool{true, false} {
		if !Better(g, x, y) || !Better(!g, px, py) {
			t.Errorf("same direction, local greater %v: the smaller key did not win on both sides", g)
		}
	}
}
