package bench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/group"
	"github.com/nearnet/nearnet/security"
)

// BenchmarkGroupBroadcast64 is the group row's broadcast alone, for
// profiling (go test -bench GroupBroadcast -cpuprofile ...): 64 members
// in this process on loopback, settled, then 1 KiB broadcasts one at a
// time, each until the other 63 have it. It reports the p50 and p99.
func BenchmarkGroupBroadcast64(b *testing.B) {
	const n = 64
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key, err := security.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	var gs []*group.Group
	defer func() {
		var wg sync.WaitGroup
		for _, g := range gs {
			wg.Go(func() { g.Close() })
		}
		wg.Wait()
	}()
	for i := range n {
		c := &group.Config{Name: "bench", DisableBrowse: true, SyncInterval: syncInterval,
			Node: &nearnet.Config{Key: &key, Hidden: true, ListenAddr: "127.0.0.1:0", Interfaces: []string{loopbackName()},
				Transport: nearnet.TransportTCP, DisableDatagrams: true, DisablePathMonitor: true}}
		if i > 0 {
			c.Seeds = []string{gs[0].Node().Addr().String()}
		}
		g, err := group.Join(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		gs = append(gs, g)
	}
	for _, g := range gs {
		for len(g.Members()) != n {
			if ctx.Err() != nil {
				b.Fatal("no full membership")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(4 * syncInterval) // settled: see NearnetGroup
	var mu sync.Mutex
	got := 0
	changed := make(chan struct{}, 1)
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	for _, g := range gs[1:] {
		wg.Go(func() {
			for {
				if _, err := g.Receive(rctx); err != nil {
					return
				}
				mu.Lock()
				got++
				mu.Unlock()
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		})
	}
	msg := make([]byte, 1024)
	want := 0
	one := func() time.Duration {
		t0 := time.Now()
		if err := gs[0].Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		want += n - 1
		for {
			mu.Lock()
			done := got >= want
			mu.Unlock()
			if done {
				return time.Since(t0)
			}
			select {
			case <-changed:
			case <-ctx.Done():
				b.Fatal("broadcast not delivered")
			}
		}
	}
	for range 50 {
		one()
	}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		ds = append(ds, one())
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-us")
}
