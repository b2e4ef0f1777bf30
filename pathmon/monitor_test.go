package pathmon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		opts  Options
		field string
	}{
		{Options{PollInterval: -time.Second}, "pathmon.Options.PollInterval"},
		{Options{PollInterval: time.Nanosecond}, "pathmon.Options.PollInterval"},
		{Options{PollInterval: 2 * time.Hour}, "pathmon.Options.PollInterval"},
		{Options{Interfaces: []string{"lo", ""}}, "pathmon.Options.Interfaces"},
		{Options{Interfaces: []string{"a\x00b"}}, "pathmon.Options.Interfaces"},
	} {
		m, err := New(tc.opts)
		if err == nil {
			m.Close()
			t.Errorf("New(%+v) = nil error, want one naming %s", tc.opts, tc.field)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New(%+v) = %v, want a *ConfigError for %s", tc.opts, err, tc.field)
		}
	}
}

// Both modes start, see loopback, and close: Events is closed, Watch says
// ErrClosed, Close is idempotent, and no goroutine is left (TestMain).
func TestLifecycle(t *testing.T) {
	forEachMode(t, func(t *testing.T, poll bool) {
		m, err := New(Options{ForcePoll: poll, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "poll", false: nativeMode}[poll]; m.Mode() != want {
			t.Errorf("Mode() = %q, want %q", m.Mode(), want)
		}
		ifis, _ := net.Interfaces()
		if len(m.Snapshot()) != len(ifis) {
			t.Errorf("Snapshot() has %d interfaces, net.Interfaces %d", len(m.Snapshot()), len(ifis))
		}
		watchDone := make(chan error, 1)
		go func() { watchDone <- m.Watch(context.Background(), func(Event) {}) }()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-m.Events(); ok {
			t.Error("Events() not closed after Close")
		}
		if err := <-watchDone; !errors.Is(err, ErrClosed) {
			t.Errorf("Watch after Close = %v, want ErrClosed", err)
		}
		if err := m.Watch(context.Background(), func(Event) {}); !errors.Is(err, ErrClosed) {
			t.Errorf("Watch on a closed monitor = %v, want ErrClosed", err)
		}
	})
}

func TestWatchContext(t *testing.T) {
	m, err := New(Options{ForcePoll: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Watch(ctx, func(Event) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch with a cancelled ctx = %v", err)
	}
}

// A consumer that does not read gets a bounded queue; when it reads, the
// events lead exactly to the monitor's state.
func TestCoalescing(t *testing.T) {
	m := &Monitor{cur: map[int]Interface{}, subs: map[*sub]struct{}{}, done: make(chan struct{})}
	m.log = discardLogger()
	s := m.newSub()
	base := netip.MustParseAddr("10.1.0.0")
	for round := range 3 {
		for i := range 50 {
			idx := 100 + i
			name := fmt.Sprintf("x%d", i)
			up := (round+i)%2 == 0
			flags := net.Flags(0)
			if up {
				flags = net.FlagUp | net.FlagRunning
			}
			m.set(idx, &Interface{Index: idx, Name: name, Flags: flags})
			for a := range 3 {
				p := netip.PrefixFrom(addrPlus(base, i*8+a), 24)
				m.setAddr(idx, p, (round+a)%3 != 0)
			}
			if round == 1 && i%5 == 0 {
				m.set(idx, nil) // removed: re-added next round
			}
		}
		m.mu.Lock()
		n := len(s.queue)
		m.mu.Unlock()
		if n > maxQueue {
			t.Fatalf("round %d: %d events queued, want them coalesced", round, n)
		}
	}
	got := map[int]view{}
	for k, v := range s.told {
		got[k] = v
	}
	for {
		ev, ok := m.pop(s)
		if !ok {
			break
		}
		applyEvent(got, ev)
	}
	want := viewsOf(m.cur)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the queued events the consumer knows\n%v\nwant\n%v", got, want)
	}
}

func addrPlus(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

func TestDiffRename(t *testing.T) {
	now := time.Now()
	p := netip.MustParsePrefix("10.0.0.1/8")
	evs := diff(3, &view{name: "a", up: true, prefixes: []netip.Prefix{p}}, &view{name: "b", up: true, prefixes: []netip.Prefix{p}}, now)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.String())
	}
	want := "[AddrRemoved a[3] 10.0.0.1/8 InterfaceDown a[3] InterfaceRemoved a[3] InterfaceAdded b[3] InterfaceUp b[3] AddrAdded b[3] 10.0.0.1/8]"
	if fmt.Sprint(got) != want {
		t.Errorf("rename a -> b:\n%v\nwant\n%v", got, want)
	}
}

func TestKindText(t *testing.T) {
	for k := InterfaceAdded; k <= AddrRemoved; k++ {
		b, _ := k.MarshalText()
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("%v: round trip gave %v, %v", k, back, err)
		}
	}
	var k Kind
	if err := k.UnmarshalText([]byte("Nope")); err == nil {
		t.Error("unknown kind accepted")
	}
	if s := Kind(99).String(); s != "Kind(99)" {
		t.Errorf("Kind(99).String() = %q", s)
	}
}

func forEachMode(t *testing.T, f func(t *testing.T, poll bool)) {
	for _, poll := range []bool{false, true} {
		name := nativeMode
		if poll {
			name = "poll"
		}
		t.Run(name, func(t *testing.T) { f(t, poll) })
	}
}
