package group

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

func testKey(t testing.TB) *security.Key {
	t.Helper()
	k, err := security.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &k
}

// nodeConfig is a node on loopback, TCP only, with a short resume window.
func nodeConfig(key *security.Key) *nearnet.Config {
	return &nearnet.Config{
		Key:                key,
		Interfaces:         []string{"lo"},
		ListenAddr:         "127.0.0.1:0",
		Transport:          nearnet.TransportTCP,
		DisableDatagrams:   true,
		DisablePathMonitor: true,
		ResumeWindow:       3 * time.Second,
		Service:            "_nngrouptest._tcp",
	}
}

func join(t testing.TB, cfg *Config) *Group {
	t.Helper()
	g := joinNoCleanup(t, cfg)
	t.Cleanup(func() { g.Close() })
	return g
}

func joinNoCleanup(t testing.TB, cfg *Config) *Group {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := Join(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// closeAll closes gs at once (one by one, each would see the others'
// edges change).
func closeAll(gs []*Group) {
	var wg sync.WaitGroup
	for _, g := range gs {
		wg.Add(1)
		go func() { defer wg.Done(); g.Close() }()
	}
	wg.Wait()
}

// seeded starts n members that find each other through the first one's
// address only (no multicast).
func seeded(t testing.TB, n int, key *security.Key, tune func(*Config)) []*Group {
	t.Helper()
	var gs []*Group
	for i := range n {
		nc := nodeConfig(key)
		nc.Hidden = true
		c := &Config{Name: "g", Node: nc, DisableBrowse: true, SyncInterval: 200 * time.Millisecond}
		if i > 0 {
			c.Seeds = []string{gs[0].Node().Addr().String()}
		}
		if tune != nil {
			tune(c)
		}
		gs = append(gs, joinNoCleanup(t, c))
	}
	t.Cleanup(func() { closeAll(gs) })
	return gs
}

// waitMembers waits until every group in gs sees want members.
func waitMembers(t testing.TB, gs []*Group, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, g := range gs {
		for len(g.Members()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %d members, want %d", g.ID().Short(), len(g.Members()), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// payload is message i of sender s.
func payload(s nearnet.PeerID, i int) []byte { return []byte(s.Short() + ":" + strconv.Itoa(i)) }

// receiveAll reads until g has want[sender] messages of each sender and
// checks that each sender's arrive in order, once, intact.
func receiveAll(ctx context.Context, g *Group, want map[nearnet.PeerID]int) error {
	got := map[nearnet.PeerID]int{}
	left := 0
	for _, n := range want {
		left += n
	}
	for left > 0 {
		m, err := g.Receive(ctx)
		if err != nil {
			return fmt.Errorf("%s: received %v of %v: %w", g.ID().Short(), got, want, err)
		}
		i := got[m.From]
		if _, ok := want[m.From]; !ok || string(m.Payload) != string(payload(m.From, i)) {
			return fmt.Errorf("%s: from %s got %q (seq %d), want %q", g.ID().Short(), m.From.Short(), m.Payload, m.Seq, payload(m.From, i))
		}
		got[m.From] = i + 1
		if got[m.From] > want[m.From] {
			return fmt.Errorf("%s: more than %d messages from %s", g.ID().Short(), want[m.From], m.From.Short())
		}
		left--
	}
	return nil
}

// waitEvent waits for an event of kind that match accepts.
func waitEvent(t testing.TB, g *Group, kind EventKind, match func(Event) bool) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seen []string
	for {
		e, err := g.NextEvent(ctx)
		if err != nil {
			t.Fatalf("no %v event: %v (saw %s)", kind, err, strings.Join(seen, ", "))
		}
		seen = append(seen, e.Kind.String()+" "+e.Member.ID.Short()+" via "+e.Via.Short()+fmt.Sprint(e.Err))
		if e.Kind == kind && (match == nil || match(e)) {
			return e
		}
	}
}
