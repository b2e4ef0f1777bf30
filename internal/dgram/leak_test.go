//go:build linux

package dgram

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// resources counts what a leak would leave behind: open file descriptors,
// UDP sockets of this process (its socket inodes that /proc/net/udp{,6}
// lists: bound ports), every bound UDP socket of the network namespace, and
// goroutines.
type resources struct {
	fds, udp, udpNS, goroutines int
}

func countResources(t *testing.T) resources {
	t.Helper()
	var r resources
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	r.fds = len(ents)
	inodes := map[string]bool{}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // no IPv6
		}
		for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 10 {
				continue
			}
			r.udpNS++
			if inodes[f[9]] {
				r.udp++
			}
		}
	}
	r.goroutines = runtime.NumGoroutine()
	return r
}

// quiet waits (boundedly) until goroutines of earlier tests have ended: the
// count has not changed for 100ms.
func quiet() {
	n := runtime.NumGoroutine()
	for i, stable := 0, 0; stable < 5 && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			stable++
		} else {
			n, stable = m, 0
		}
	}
}

// settle waits (boundedly) for the counts to come back to want, since
// exited goroutines take a moment to be gone. Descriptors and sockets must
// match exactly; goroutines may be fewer (one of an earlier test ended).
func settle(t *testing.T, want resources) resources {
	t.Helper()
	var got resources
	for range 100 {
		if got = countResources(t); got.same(want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return got
}

// same compares what belongs to this process. udpNS (every UDP socket in
// the network namespace) is only logged: other test binaries share the
// namespace when packages are tested in parallel, and their sockets come
// and go.
func (r resources) same(want resources) bool {
	return r.fds == want.fds && r.udp == want.udp && r.goroutines <= want.goroutines
}

// TestLeak50000Flows opens, uses and closes 50 000 flows on one Mux per
// side and checks that descriptors, bound UDP sockets and goroutines are
// back at their starting counts, with the Muxes open and after they close.
func TestLeak50000Flows(t *testing.T) {
	flows := 50000
	if testing.Short() {
		flows = 2000
	}
	quiet()
	before := countResources(t)
	ma, mb := listenLoopback(t, nil), listenLoopback(t, nil)
	// One flow first, so that lazily made things (buffer pools, the MTU
	// cache) are part of the baseline.
	exchange(t, ma, mb, 0)
	start := countResources(t)
	t.Logf("before the Muxes %+v; with them %+v", before, start)

	begin := time.Now()
	deadline := begin.Add(3 * time.Minute)
	const workers = 4
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flows; i += workers {
				if time.Now().After(deadline) {
					errc <- fmt.Errorf("flow %d: out of time", i)
					return
				}
				if err := exchangeErr(ma, mb, i); err != nil {
					errc <- fmt.Errorf("flow %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	elapsed := time.Since(begin)
	if n, m := ma.Flows(), mb.Flows(); n != 0 || m != 0 {
		t.Fatalf("flows left: %d and %d", n, m)
	}
	if q := ma.queued.Load() + mb.queued.Load(); q != 0 {
		t.Fatalf("%d bytes still counted as queued", q)
	}
	if got := settle(t, start); !got.same(start) {
		t.Fatalf("after %d flows: %+v, want %+v", flows, got, start)
	}
	t.Logf("%d flows in %v (%.0f/s); mux stats %+v %+v", flows, elapsed, float64(flows)/elapsed.Seconds(), ma.Stats(), mb.Stats())

	ma.Close()
	mb.Close()
	if got := settle(t, before); !got.same(before) {
		t.Fatalf("after closing the Muxes: %+v, want %+v", got, before)
	}
}

func exchange(t *testing.T, ma, mb *Mux, i int) {
	t.Helper()
	if err := exchangeErr(ma, mb, i); err != nil {
		t.Fatal(err)
	}
}

// exchangeErr opens a secure flow, sends a datagram each way and closes
// both ends. A datagram lost on loopback (it should not be) is sent again,
// at most 3 times.
func exchangeErr(ma, mb *Mux, i int) error {
	sa, sb := NewSessionID(), NewSessionID()
	ka, kb := testKeysNoT()
	a, err := ma.NewFlow(FlowConfig{LocalSession: sa, RemoteSession: sb, RemoteAddr: mb.LocalAddr(), Keys: ka})
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := mb.NewFlow(FlowConfig{LocalSession: sb, RemoteSession: sa, Keys: kb})
	if err != nil {
		return err
	}
	defer b.Close()
	if i%100 == 0 {
		// Look the path MTU up afresh (a probe socket), not from the cache.
		ma.mtus.forget(mb.LocalAddr().Addr())
		if n := a.MaxSize(); n <= 0 {
			return fmt.Errorf("MaxSize %d", n)
		}
	}
	msg := fmt.Sprint("ping ", i)
	if err := sendUntil(a, b, msg); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := sendUntil(b, a, "pong"); err != nil {
		return fmt.Errorf("pong: %w", err)
	}
	return nil
}

func sendUntil(from, to *Flow, msg string) error {
	for range 3 {
		if err := from.Send([]byte(msg)); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := to.Receive(ctx)
		cancel()
		if err == nil {
			if string(got) != msg {
				return fmt.Errorf("got %q, want %q", got, msg)
			}
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return errors.New("lost 3 times")
}

// TestLeakExpiredFlows: flows nobody closes expire, and take nothing with
// them.
func TestLeakExpiredFlows(t *testing.T) {
	cfg := &Config{IdleTimeout: 50 * time.Millisecond}
	ma, mb := listenLoopback(t, cfg), listenLoopback(t, cfg)
	exchange(t, ma, mb, 0)
	start := countResources(t)
	var fs []*Flow
	for i := range 1000 {
		a, err := ma.NewFlow(FlowConfig{LocalSession: NewSessionID(), RemoteSession: NewSessionID(), RemoteAddr: mb.LocalAddr()})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := a.Send([]byte("unheard")); err != nil {
				t.Fatal(err)
			}
		}
		fs = append(fs, a)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ma.Flows() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ma.Flows(); n != 0 {
		t.Fatalf("%d flows left", n)
	}
	for _, f := range fs {
		if !errors.Is(f.Err(), ErrExpired) {
			t.Fatalf("flow ended with %v", f.Err())
		}
	}
	if got := settle(t, start); !got.same(start) {
		t.Fatalf("%+v, want %+v", got, start)
	}
}
