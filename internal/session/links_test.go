package session

import (
	"slices"
	"testing"
)

// fakeLink is a link as the session sees it: which way it was dialed, its
// key, what it carried and the base messages queued on it.
type fakeLink struct {
	out   bool
	key   string
	sent  uint64
	bases []uint64
}

func (l *fakeLink) Outgoing() bool    { return l.out }
func (l *fakeLink) Key() string       { return l.key }
func (l *fakeLink) Sent() uint64      { return l.sent }
func (l *fakeLink) SendBase(n uint64) { l.bases = append(l.bases, n) }

type set = Links[fakeLink, *fakeLink]

func newSet() *set {
	s := new(set)
	s.Init()
	return s
}

// A failover: the send link breaks while a second link is attached; the
// second takes over with a base message carrying what the first carried,
// and senders waiting for a link are woken.
func TestLinksFailover(t *testing.T) {
	s := newSet()
	a, b := &fakeLink{out: true, key: "a"}, &fakeLink{out: false, key: "b"}
	s.Add(a)
	s.Promote(a)
	if s.Send() != a || len(a.bases) != 0 {
		t.Fatal("the first link is not the send link, or got a base message")
	}
	a.sent = 7
	s.Add(b)
	woken := s.Changed()
	if found, wasSend := s.Remove(a); !found || !wasSend || s.Send() != nil {
		t.Fatalf("removing the send link: found %v wasSend %v send %v", found, wasSend, s.Send())
	}
	if only, ok := s.Only(); !ok || only != b {
		t.Fatal("b is not the only link left")
	}
	s.Promote(s.Best(true))
	if s.Send() != b || !slices.Equal(b.bases, []uint64{7}) {
		t.Fatalf("b took over with bases %v, want [7]", b.bases)
	}
	select {
	case <-woken:
	default:
		t.Fatal("senders were not woken by the new send link")
	}
	// b carries 3 more, then a third link takes over: 10.
	b.sent = 3
	c := &fakeLink{out: true, key: "c"}
	s.Add(c)
	s.Remove(b)
	s.Promote(c)
	if !slices.Equal(c.bases, []uint64{10}) {
		t.Fatalf("c's bases %v, want [10]", c.bases)
	}
}

// A simultaneous open seen from both sides: each adds its two links in
// the order they completed (which may differ), retires the worse with
// what it carried, and both keep the link dialed by the same side.
func TestLinksSimultaneousOpen(t *testing.T) {
	for _, aGreater := range []bool{true, false} {
		for _, order := range [][2]int{{0, 1}, {1, 0}} {
			// Link 0 dialed by A (key k0), link 1 dialed by B (key k1).
			sides := [2][2]*fakeLink{
				{{out: true, key: "k0"}, {out: false, key: "k1"}}, // A
				{{out: false, key: "k0"}, {out: true, key: "k1"}}, // B
			}
			var kept [2]string
			for side, greater := range []bool{aGreater, !aGreater} {
				s := newSet()
				var dropped *fakeLink
				for _, i := range order {
					l := sides[side][i]
					s.Add(l)
					cur := s.Send()
					switch {
					case cur == nil:
						s.Promote(l)
					case Better(greater, l, cur):
						cur.sent = 2
						s.Retired(cur.Sent()) // its close flushed what it carried
						s.Promote(l)
						dropped = cur
					default:
						dropped = l
					}
				}
				s.Remove(dropped)
				kept[side] = s.Send().key
				if s.Len() != 1 {
					t.Fatalf("%d links left", s.Len())
				}
			}
			if kept[0] != kept[1] {
				t.Errorf("A greater %v, order %v: A keeps %s, B keeps %s", aGreater, order, kept[0], kept[1])
			}
		}
	}
}

// Resume replaces every link; the resumed one starts from what the peer
// holds.
func TestLinksResume(t *testing.T) {
	s := newSet()
	a := &fakeLink{out: true, key: "a", sent: 9}
	s.Add(a)
	s.Promote(a)
	r := &fakeLink{out: true, key: "r"}
	old := s.Clear()
	if len(old) != 1 || old[0] != a || s.Send() != nil || s.Len() != 0 {
		t.Fatal("Clear did not detach the old link")
	}
	s.Resume(6)
	s.Add(r)
	s.Promote(r)
	if !slices.Equal(r.bases, []uint64{6}) {
		t.Fatalf("resumed link's bases %v, want [6]", r.bases)
	}
	// The old link ends afterwards: nothing depends on it.
	if found, wasSend := s.Remove(a); found || wasSend {
		t.Fatal("a replaced link was still attached")
	}
	s.End()
	if s.Send() != nil {
		t.Fatal("an ended set still sends")
	}
}
