package group

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/wire"
)

func broadcastAndCheck(t *testing.T, gs []*Group, senders []*Group, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := map[nearnet.PeerID]int{}
	for _, s := range senders {
		want[s.ID()] = count
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(gs)+len(senders))
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range count {
				if err := s.Send(ctx, payload(s.ID(), i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, g := range gs {
		w := map[nearnet.PeerID]int{}
		for id, n := range want {
			if id != g.ID() {
				w[id] = n
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := receiveAll(ctx, g, w); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGroupSeedsMesh(t *testing.T) {
	gs := seeded(t, 5, testKey(t), nil)
	waitMembers(t, gs, 5)
	broadcastAndCheck(t, gs, gs[:3], 50)
	for _, g := range gs {
		if n := len(g.Neighbours()); n != 4 {
			t.Errorf("%s has %d neighbours in a mesh of 5", g.ID().Short(), n)
		}
	}
}

func TestGroupSparse(t *testing.T) {
	gs := seeded(t, 24, testKey(t), func(c *Config) { c.MeshLimit = 6; c.Degree = 3 })
	waitMembers(t, gs, 24)
	broadcastAndCheck(t, gs, gs[:4], 30)
	maxN := 0
	for _, g := range gs {
		maxN = max(maxN, len(g.Neighbours()))
	}
	t.Logf("most neighbours: %d", maxN)
	// Beyond MeshLimit messages are forwarded: members that got them from
	// a forwarder took them by their authenticators, not signatures.
	var sum authStats
	for _, g := range gs {
		a := g.authStats()
		sum.Direct += a.Direct
		sum.Tagged += a.Tagged
		sum.Signed += a.Signed
	}
	t.Logf("data frames taken: %d from their origin, %d by authenticator, %d by signature", sum.Direct, sum.Tagged, sum.Signed)
	if sum.Tagged == 0 {
		t.Error("no forwarded message was taken by its authenticator")
	}
	// Once the topology has settled, flooding is pruned; a member that
	// loses a frame pruned flooding sent it once gets it by repair.
	deadline := time.Now().Add(30 * time.Second)
	for !allSettled(gs) {
		if time.Now().After(deadline) {
			t.Fatal("the topology did not settle")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var once sync.Once
	var dropped atomic.Bool
	// A member that is not the sender's neighbour: it gets the sender's
	// frames from a forwarder.
	var victim *Group
	for _, g := range gs[1:] {
		if !slices.Contains(g.Neighbours(), gs[0].ID()) {
			victim = g
			break
		}
	}
	if victim == nil {
		t.Fatal("every member is the sender's neighbour")
	}
	testDrop = func(g *Group, from nearnet.PeerID, d *wire.GroupDataFrame) bool {
		drop := false
		if g == victim && d.Origin == gs[0].ID() && from != d.Origin && d.Seq == 35 {
			once.Do(func() { drop = true })
		}
		if drop {
			dropped.Store(true)
		}
		return drop
	}
	t.Cleanup(func() { testDrop = nil })
	broadcastAndCheck(t, gs, gs[:4], 10)
	if !dropped.Load() {
		t.Error("the frame to lose never came from a forwarder")
	}
	var pruned, fwd uint64
	for _, g := range gs {
		a := g.authStats()
		pruned += a.Pruned
		fwd += a.Forwarded
	}
	t.Logf("settled: %d frames forwarded, %d not (pruned)", fwd, pruned)
	if pruned == 0 {
		t.Error("no frame was pruned in a settled topology")
	}
}

func allSettled(gs []*Group) bool {
	for _, g := range gs {
		g.mu.Lock()
		s := g.topo.settled
		g.mu.Unlock()
		if !s {
			return false
		}
	}
	return true
}

// A message a member missed (here dropped on arrival) is given to it by a
// neighbour that has it, after its digest shows it behind.
func TestGroupRepair(t *testing.T) {
	gs := seeded(t, 3, testKey(t), nil)
	waitMembers(t, gs, 3)
	var once sync.Once
	testDrop = func(g *Group, from nearnet.PeerID, d *wire.GroupDataFrame) bool {
		drop := false
		if g == gs[1] && d.Seq == 3 {
			once.Do(func() { drop = true })
		}
		return drop
	}
	t.Cleanup(func() { testDrop = nil })
	broadcastAndCheck(t, gs, gs[:1], 10)
}
