package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/group"
	"github.com/nearnet/nearnet/security"
)

// GroupRun is one group measurement: n members in this process on
// loopback, joined through the first one's address.
type GroupRun struct {
	Members    int
	Membership time.Duration   // from the first Join until every member sees all
	Delivery   []time.Duration // per 1 KiB broadcast: from Send until the last member has it
	Rate       float64         // broadcast messages per second, back to back, all delivered
	PeakPerMem int64           // peak Go heap and stacks during the run, per member, above the start
	IdlePerMem int64           // the same at full membership, before any broadcast
}

// NearnetGroup measures a group of n members: the time to full
// membership, then, from 1 s later, one sender's 1 KiB broadcasts one at
// a time (each until every member has it), and a burst of burst
// broadcasts.
func NearnetGroup(ctx context.Context, tr nearnet.Transport, n, samples, burst int) (GroupRun, error) {
	run := GroupRun{Members: n}
	key, err := security.GenerateKey()
	if err != nil {
		return run, err
	}
	runtime.GC()
	base := heapAndStacks()
	peak := base
	stopSample := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSample:
				return
			case <-t.C:
				peak = max(peak, heapAndStacks())
			}
		}
	}()
	defer func() {
		select {
		case <-stopSample:
		default:
			close(stopSample)
		}
		<-sampled
	}()

	var gs []*group.Group
	defer func() {
		var wg sync.WaitGroup
		for _, g := range gs {
			wg.Add(1)
			go func() { defer wg.Done(); g.Close() }()
		}
		wg.Wait()
	}()
	began := time.Now()
	for i := range n {
		c := &group.Config{Name: "bench", DisableBrowse: true, SyncInterval: syncInterval,
			Node: &nearnet.Config{Key: &key, Hidden: true, ListenAddr: "127.0.0.1:0", Interfaces: []string{loopbackName()},
				Transport: tr, DisableDatagrams: true, DisablePathMonitor: true}}
		if i > 0 {
			c.Seeds = []string{gs[0].Node().Addr().String()}
		}
		g, err := group.Join(ctx, c)
		if err != nil {
			return run, err
		}
		gs = append(gs, g)
	}
	for _, g := range gs {
		for len(g.Members()) != n {
			if err := ctx.Err(); err != nil {
				return run, fmt.Errorf("membership: %w", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	run.Membership = time.Since(began)
	run.IdlePerMem = (heapAndStacks() - base) / int64(n)
	// Broadcasts are measured in the group as it runs, not while its
	// edges still form: members learn of each other before all their
	// connections are up, and beyond MeshLimit forward along trees only
	// once their part of the topology has been still for two sync
	// intervals. Four intervals after full membership (1 s) it has.
	select {
	case <-time.After(4 * syncInterval):
	case <-ctx.Done():
		return run, ctx.Err()
	}

	// Every member but the sender counts what it receives.
	var mu sync.Mutex
	got := 0
	changed := make(chan struct{}, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, g := range gs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
		}()
	}
	defer wg.Wait()
	defer stop()
	waitFor := func(want int) error {
		for {
			mu.Lock()
			done := got >= want
			mu.Unlock()
			if done {
				return nil
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	msg := make([]byte, 1024)
	want := 0
	for range samples {
		t0 := time.Now()
		if err := gs[0].Send(ctx, msg); err != nil {
			return run, err
		}
		want += n - 1
		if err := waitFor(want); err != nil {
			return run, fmt.Errorf("broadcast: %w", err)
		}
		run.Delivery = append(run.Delivery, time.Since(t0))
	}
	t0 := time.Now()
	for range burst {
		if err := gs[0].Send(ctx, msg); err != nil {
			return run, err
		}
	}
	want += burst * (n - 1)
	if err := waitFor(want); err != nil {
		return run, fmt.Errorf("burst: %w", err)
	}
	run.Rate = float64(burst) / time.Since(t0).Seconds()
	close(stopSample)
	<-sampled
	run.PeakPerMem = (peak - base) / int64(n)
	return run, nil
}

// syncInterval is the groups' Config.SyncInterval.
const syncInterval = 250 * time.Millisecond

func heapAndStacks() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// groups: issue #16's rows, 16 and 64 members in one process (4 and 8
// in the package's own test). Baselines: for membership, dialing the n-1
// connections of one full-mesh member one after another over the raw
// baseline; for delivery, a single nearnet connection's 64 B ping-pong
// p50 (the yardstick), and the floor (fanout.go): one sender
// writing the 1 KiB message to n-1 receivers over raw TLS, until the last
// has it; for the rate, one nearnet connection's 1 KiB messages one way;
// for memory, the same group idle at full membership. One more row puts
// the same fan-out over nearnet Conns against the raw one.
func groups(ctx context.Context, o Options) ([]Result, error) {
	ctx, cancel := deadline(ctx, 3*time.Minute)
	defer cancel()
	b := o.baselines()
	pp, err := NearnetPingPong(ctx, o.Transport, 64, o.scale(2000, 200))
	if err != nil {
		return nil, err
	}
	pp50 := percentile(pp, 0.5)
	count := o.scale(20000, 2000)
	one, err := NearnetOneWay(ctx, o.Transport, 1024, count)
	if err != nil {
		return nil, err
	}
	oneRate := float64(count) / one.Seconds()
	sizes := []int{16, 64}
	if o.tiny {
		sizes = []int{4, 8}
	}
	var out []Result
	for _, n := range sizes {
		dials, err := b.connect(ctx, n-1)
		if err != nil {
			return out, err
		}
		var dialSum time.Duration
		for _, d := range dials {
			dialSum += d
		}
		fanSamples := o.scale(1000, 200)
		rawFan, err := RawFanOut(ctx, n-1, 1024, fanSamples)
		if err != nil {
			return out, fmt.Errorf("fan-out to %d: %w", n-1, err)
		}
		nnFan, err := NearnetFanOut(ctx, o.Transport, n-1, 1024, fanSamples)
		if err != nil {
			return out, fmt.Errorf("fan-out to %d: %w", n-1, err)
		}
		r, err := NearnetGroup(ctx, o.Transport, n, o.scale(200, 20), o.scale(1000, 100))
		if err != nil {
			return out, fmt.Errorf("group of %d: %w", n, err)
		}
		k := fmt.Sprintf("group%d_", n)
		ppName := "one nearnet connection's 64 B ping-pong p50"
		mem := Result{Key: k + "membership", Title: fmt.Sprintf("group of %d, full membership", n), Unit: "ms",
			Nearnet: float64(r.Membership) / float64(time.Millisecond), Baseline: float64(dialSum) / float64(time.Millisecond),
			BaselineName: fmt.Sprintf("%d %s connects in a row", n-1, b.name)}
		p50 := Result{Key: k + "bcast1k_p50", Title: fmt.Sprintf("group of %d, 1 KiB to all, p50", n), Unit: "us",
			Nearnet: us(percentile(r.Delivery, 0.5)), Baseline: us(pp50), BaselineName: ppName}
		p99 := Result{Key: k + "bcast1k_p99", Title: fmt.Sprintf("group of %d, 1 KiB to all, p99", n), Unit: "us",
			Nearnet: us(percentile(r.Delivery, 0.99)), Baseline: us(pp50), BaselineName: ppName}
		fanName := fmt.Sprintf("1 KiB written to %d raw TLS connections, until the last has it, p50", n-1)
		floor := Result{Key: k + "bcast1k_p50_vs_fanout", Title: fmt.Sprintf("group of %d, 1 KiB to all, p50 vs floor", n), Unit: "us",
			Nearnet: us(percentile(r.Delivery, 0.5)), Baseline: us(percentile(rawFan, 0.5)), BaselineName: fanName}
		fan := Result{Key: k + "fanout1k_p50", Title: fmt.Sprintf("1 KiB to %d nearnet Conns, p50", n-1), Unit: "us",
			Nearnet: us(percentile(nnFan, 0.5)), Baseline: us(percentile(rawFan, 0.5)), BaselineName: fanName}
		rate := Result{Key: k + "bcast1k_rate", Title: fmt.Sprintf("group of %d, 1 KiB broadcasts", n), Unit: "msg/s",
			Nearnet: r.Rate, Baseline: oneRate, BaselineName: "one nearnet connection, 1 KiB messages", HigherIsBetter: true}
		heap := Result{Key: k + "mem", Title: fmt.Sprintf("group of %d, peak heap+stacks per member", n), Unit: "KiB",
			Nearnet: float64(max(r.PeakPerMem, 1)) / 1024, Baseline: float64(max(r.IdlePerMem, 1)) / 1024,
			BaselineName: "the same, idle at full membership"}
		memGoal, p50Goal := "", ""
		if n == 64 {
			memGoal, p50Goal = "under 5 s", "within 10x one connection's ping-pong p50"
		}
		out = append(out,
			finish(mem, memGoal, func(r Result) bool { return r.Nearnet < 5000 }),
			finish(p50, p50Goal, func(r Result) bool { return r.Ratio <= 10 }),
			finish(p99, "", nil), finish(floor, "", nil), finish(fan, "", nil), finish(rate, "", nil), finish(heap, "", nil))
	}
	return out, nil
}
