package group

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/wire"
)

// A member that forwards a message under another member's name is found
// out: a message it signed itself, and a real message whose payload it
// changed. Neither is delivered; the real ones still arrive, in order.
func TestGroupForgedForward(t *testing.T) {
	gs := seeded(t, 3, testKey(t), nil)
	a, b, evil := gs[0], gs[1], gs[2]
	waitMembers(t, gs, 3)
	waitLinked(t, evil, b, nil)
	forge := func(tamper func(d *wire.GroupDataFrame)) {
		evil.mu.Lock()
		defer evil.mu.Unlock()
		n := evil.nbrs[b.ID()]
		m := evil.members[a.ID()]
		if n == nil || m == nil {
			t.Fatal("the evil member is not connected to b or does not know a")
		}
		b.mu.Lock()
		seq := b.streams[skey{a.ID(), m.rec.Epoch}].next // the next b will take
		b.mu.Unlock()
		d := &wire.GroupDataFrame{Origin: a.ID(), Epoch: m.rec.Epoch, Seq: seq, Payload: []byte("real")}
		d.Sig, _ = a.sign(wire.DataSigned(a.name, d)) // a's real signature
		tamper(d)
		evil.enqueueLocked(n, wire.AppendGroupData(nil, d))
	}
	evil.mu.Lock()
	first := evil.nbrs[b.ID()]
	evil.mu.Unlock()
	b.mu.Lock()
	bFirst := b.nbrs[evil.ID()]
	b.mu.Unlock()
	forge(func(d *wire.GroupDataFrame) { d.Payload = []byte("forged") })
	e := waitEvent(t, b, Forged, nil)
	if e.Via != evil.ID() || e.Member.ID != a.ID() {
		t.Errorf("forged event names via %s, member %s; want %s, %s", e.Via.Short(), e.Member.ID.Short(), evil.ID().Short(), a.ID().Short())
	}
	t.Logf("event: %v", e.Err)
	// The forger was dropped; it comes back (the topology wants it) and
	// tries once more with its own signature.
	waitLinked(t, evil, b, first)
	waitLinked(t, b, evil, bFirst)
	forge(func(d *wire.GroupDataFrame) { d.Sig, _ = evil.sign(wire.DataSigned(evil.name, d)) })
	waitEvent(t, b, Forged, func(e Event) bool { return e.Via == evil.ID() })
	// Authenticators, checked as b checks what a neighbour passes on: a's
	// real tags pass without a signature; on a changed payload they fail,
	// and so do tags the forwarder made with its own pair key with b.
	a.mu.Lock()
	epoch := a.self.Epoch
	genuine := &wire.GroupDataFrame{Origin: a.ID(), Epoch: epoch, Seq: 1 << 40, Payload: []byte("real")}
	digest := sha256.Sum256(wire.DataSigned(a.name, genuine))
	genuine.Tags = a.tagsLocked(&digest)
	a.mu.Unlock()
	changed := *genuine
	changed.Payload = []byte("forged")
	evil.mu.Lock()
	own := changed
	digest = sha256.Sum256(wire.DataSigned(evil.name, &own))
	own.Tags = evil.tagsLocked(&digest)
	evil.mu.Unlock()
	b.mu.Lock()
	via := &nbr{id: evil.ID()}
	m := b.members[a.ID()]
	before := b.auth.Tagged
	if !b.authenticLocked(via, m, genuine) || b.auth.Tagged != before+1 {
		t.Error("a's real authenticator was not taken")
	}
	if b.authenticLocked(via, m, &changed) {
		t.Error("a's authenticators passed on a changed payload")
	}
	if b.authenticLocked(via, m, &own) {
		t.Error("the forwarder's own authenticators passed for a's message")
	}
	b.mu.Unlock()
	broadcastAndCheck(t, gs[:2], gs[:1], 5)
}

// Members of another group are neither connected when found by DNS-SD nor
// admitted when they dial.
func TestGroupOtherGroup(t *testing.T) {
	key := testKey(t)
	mk := func(name string, seeds ...string) *Group {
		return join(t, &Config{Name: name, Node: nodeConfig(key), Seeds: seeds, SyncInterval: 100 * time.Millisecond})
	}
	x1, x2 := mk("x"), mk("x")
	y1 := mk("y")
	waitMembers(t, []*Group{x1, x2}, 2)
	y2 := mk("y", x1.Node().Addr().String())
	waitMembers(t, []*Group{y1, y2}, 2) // found each other by DNS-SD
	time.Sleep(500 * time.Millisecond)
	for _, g := range []*Group{x1, x2, y1, y2} {
		if n := len(g.Members()); n != 2 {
			t.Errorf("%s sees %d members", g.ID().Short(), n)
		}
	}
	if slices.Contains(x1.Neighbours(), y2.ID()) || slices.Contains(y2.Neighbours(), x1.ID()) {
		t.Error("a member of y is connected to x")
	}
}

// A message to some members reaches them only; the others keep each
// sender's order all the same.
func TestGroupSubset(t *testing.T) {
	gs := seeded(t, 4, testKey(t), nil)
	waitMembers(t, gs, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	to := []nearnet.PeerID{gs[1].ID(), gs[2].ID()}
	if err := gs[0].Send(ctx, []byte("some"), to...); err != nil {
		t.Fatal(err)
	}
	if err := gs[0].Send(ctx, []byte("all")); err != nil {
		t.Fatal(err)
	}
	for i, g := range gs[1:] {
		var got []string
		for len(got) < 2 {
			m, err := g.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.From != gs[0].ID() {
				t.Fatalf("message from %s", m.From.Short())
			}
			got = append(got, string(m.Payload))
			if string(m.Payload) == "some" && !slices.Equal(m.To, to) {
				t.Errorf("To = %v", m.To)
			}
			if i == 2 || string(m.Payload) == "all" {
				break
			}
		}
		want := []string{"some", "all"}
		if i == 2 {
			want = []string{"all"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("member %d got %q, want %q", i+1, got, want)
		}
	}
}

// A member that stops reading is dropped by its neighbours once they lag
// too far behind, with a Slow event; the others keep going.
func TestGroupSlowMember(t *testing.T) {
	gs := seeded(t, 3, testKey(t), func(c *Config) {
		c.MaxLag = 16
		c.LagTimeout = time.Second
		c.ReceiveBuffer = 4
		c.Node.ReceiveBuffer = 1024
		c.Node.SendBuffer = 1024
	})
	src, ok, slow := gs[0], gs[1], gs[2]
	waitMembers(t, gs, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		for {
			m, err := ok.Receive(ctx)
			if err != nil {
				done <- err
				return
			}
			if bytes.Equal(m.Payload, []byte("last")) {
				done <- nil
				return
			}
		}
	}()
	// Enough to fill the slow member's socket buffers too.
	big := bytes.Repeat([]byte("x"), 64<<10)
	sctx, stop := context.WithCancel(ctx)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for range 1000 {
			if src.Send(sctx, big) != nil {
				return
			}
		}
	}()
	e := waitEvent(t, src, Slow, nil)
	stop()
	<-sent
	if e.Via != slow.ID() {
		t.Errorf("slow event for %s, want %s", e.Via.Short(), slow.ID().Short())
	}
	t.Logf("event: %v", e.Err)
	if err := src.Send(ctx, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Members that leave are seen to leave, with no error; a member lost
// (its node gone without a word) is seen to leave, with one.
func TestGroupLeave(t *testing.T) {
	gs := seeded(t, 3, testKey(t), nil)
	waitMembers(t, gs, 3)
	joined := map[nearnet.PeerID]bool{}
	for len(joined) < 2 {
		joined[waitEvent(t, gs[0], Joined, nil).Member.ID] = true
	}
	if !joined[gs[1].ID()] || !joined[gs[2].ID()] {
		t.Errorf("joined: %v", joined)
	}
	gs[1].Close()
	e := waitEvent(t, gs[0], Left, nil)
	if e.Member.ID != gs[1].ID() || e.Err != nil {
		t.Errorf("left: %s %v", e.Member.ID.Short(), e.Err)
	}
	// Lost: its node is aborted under it (no leave record, no close).
	for _, c := range gs[2].node.Peers() {
		c.Abort()
	}
	gs[2].node.Close()
	e = waitEvent(t, gs[0], Left, nil)
	if e.Member.ID != gs[2].ID() || e.Err == nil {
		t.Errorf("lost: %s %v", e.Member.ID.Short(), e.Err)
	}
	t.Logf("lost: %v", e.Err)
}

// waitLinked waits until a has b as a neighbour whose hello arrived, other
// than old.
func waitLinked(t *testing.T, a, b *Group, old *nbr) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		n := a.nbrs[b.ID()]
		ok := n != nil && n.ready && n != old
		a.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not linked to %s", a.ID().Short(), b.ID().Short())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
