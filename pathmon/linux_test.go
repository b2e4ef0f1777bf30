//go:build linux

package pathmon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// These tests add veth interfaces with netlink in the test
// binary's own network namespace (go test -exec .ci/netns-exec), so they
// never touch the machine's network.

func requireNS(t *testing.T) {
	t.Helper()
	netns.Require(t, "root in a private network namespace holding only lo (go test -exec \"$PWD/.ci/netns-exec\")", privateNS)
}

// waitTimeout is generous: it bounds waiting for an event that must come,
// it is not a measure of speed.
const waitTimeout = 30 * time.Second

// recorder reads a monitor's Events channel and lets a test wait for
// events, in order.
type recorder struct {
	mu     sync.Mutex
	evs    []Event
	next   int
	notify chan struct{}
	done   chan struct{}
}

func record(t *testing.T, m *Monitor) *recorder {
	r := &recorder{notify: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range m.Events() {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { m.Close(); <-r.done })
	return r
}

// wait returns the first event after the last one wait returned that
// matches kind, interface name and (if valid) address.
func (r *recorder) wait(t *testing.T, k Kind, name string, addr netip.Prefix) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		r.mu.Lock()
		for i := r.next; i < len(r.evs); i++ {
			ev := r.evs[i]
			if ev.Kind == k && ev.Interface == name && (!addr.IsValid() || ev.Addr == addr) {
				r.next = i + 1
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-ctx.Done():
			t.Fatalf("no %v for %s %v within %v; events: %s", k, name, addr, waitTimeout, r.summary())
		}
	}
}

func (r *recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, ev := range r.evs {
		s = append(s, ev.String())
	}
	return strings.Join(s, ", ")
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func newMonitor(t *testing.T, poll bool, ifaces ...string) (*Monitor, *recorder) {
	t.Helper()
	m, err := New(Options{ForcePoll: poll, PollInterval: 20 * time.Millisecond, Interfaces: ifaces})
	if err != nil {
		t.Fatal(err)
	}
	return m, record(t, m)
}

// addLink adds a veth pair: name, and its peer name+"p" already up, so
// that name has carrier as soon as it is set up itself. (A veth rather than
// a dummy: not every kernel has the dummy driver.)
func addLink(t *testing.T, name string) netlink.Link {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(v) })
	peer, err := netlink.LinkByName(name + "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func addAddr(t *testing.T, l netlink.Link, p netip.Prefix) {
	t.Helper()
	a := &netlink.Addr{IPNet: prefixIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s to %s: %v", p, l.Attrs().Name, err)
	}
}

func delAddr(t *testing.T, l netlink.Link, p netip.Prefix) {
	t.Helper()
	if err := netlink.AddrDel(l, &netlink.Addr{IPNet: prefixIPNet(p)}); err != nil {
		t.Fatalf("remove %s from %s: %v", p, l.Attrs().Name, err)
	}
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The life of an interface: added, up, addresses (IPv4 and IPv6) come and
// go, down, removed, each seen as its event, by netlink and by polling.
func TestInterfaceLifecycle(t *testing.T) {
	requireNS(t)
	forEachMode(t, func(t *testing.T, poll bool) {
		name := map[bool]string{false: "pmnl0", true: "pmpoll0"}[poll]
		v4 := netip.MustParsePrefix("10.77.0.1/24")
		v6 := netip.MustParsePrefix("2001:db8:77::1/64")
		m, r := newMonitor(t, poll)

		l := addLink(t, name)
		added := r.wait(t, InterfaceAdded, name, netip.Prefix{})
		if added.Index != l.Attrs().Index || added.Time.IsZero() {
			t.Errorf("InterfaceAdded %+v, want index %d and a time", added, l.Attrs().Index)
		}
		must(t, netlink.LinkSetUp(l))
		r.wait(t, InterfaceUp, name, netip.Prefix{})
		addAddr(t, l, v4)
		r.wait(t, AddrAdded, name, v4)
		addAddr(t, l, v6)
		r.wait(t, AddrAdded, name, v6)

		snap := m.Snapshot()
		i := slices.IndexFunc(snap, func(i Interface) bool { return i.Name == name })
		if i < 0 {
			t.Fatalf("%s not in Snapshot %+v", name, snap)
		}
		if got := snap[i]; !got.Up() || !slices.Contains(got.Prefixes, v4) || !slices.Contains(got.Prefixes, v6) || got.MTU != l.Attrs().MTU {
			t.Errorf("Snapshot has %+v, want up with %s and %s, MTU %d", got, v4, v6, l.Attrs().MTU)
		}

		delAddr(t, l, v4)
		r.wait(t, AddrRemoved, name, v4)
		delAddr(t, l, v6)
		r.wait(t, AddrRemoved, name, v6)
		must(t, netlink.LinkSetDown(l))
		r.wait(t, InterfaceDown, name, netip.Prefix{})
		must(t, netlink.LinkDel(l))
		r.wait(t, InterfaceRemoved, name, netip.Prefix{})
		if slices.ContainsFunc(m.Snapshot(), func(i Interface) bool { return i.Name == name }) {
			t.Errorf("%s still in Snapshot after removal", name)
		}
	})
}

// A veth end that is up but whose peer is down has no carrier: it is not
// Up until the peer is.
func TestCarrier(t *testing.T) {
	requireNS(t)
	forEachMode(t, func(t *testing.T, poll bool) {
		a, b := "pmva0", "pmvb0"
		if poll {
			a, b = "pmva1", "pmvb1"
		}
		m, r := newMonitor(t, poll, a)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}
		must(t, netlink.LinkAdd(veth))
		t.Cleanup(func() { _ = netlink.LinkDel(veth) })
		la, err := netlink.LinkByName(a)
		must(t, err)
		lb, err := netlink.LinkByName(b)
		must(t, err)
		r.wait(t, InterfaceAdded, a, netip.Prefix{})
		must(t, netlink.LinkSetUp(la))
		// Wait until the monitor has seen a admin-up (its flags say so)
		// with no carrier, then give it the carrier.
		waitSnapshot(t, m, a, func(i Interface) bool { return i.Flags&net.FlagUp != 0 })
		if slices.ContainsFunc(r.all(), func(ev Event) bool { return ev.Kind == InterfaceUp }) {
			t.Errorf("InterfaceUp for %s without carrier: %s", a, r.summary())
		}
		must(t, netlink.LinkSetUp(lb))
		r.wait(t, InterfaceUp, a, netip.Prefix{})
		must(t, netlink.LinkSetDown(lb))
		r.wait(t, InterfaceDown, a, netip.Prefix{})
		for _, ev := range r.all() {
			if ev.Interface != a {
				t.Errorf("event for an interface not asked for: %v", ev)
			}
		}
	})
}

func waitSnapshot(t *testing.T, m *Monitor, name string, ok func(Interface) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		for _, i := range m.Snapshot() {
			if i.Name == name && ok(i) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the monitor's snapshot never showed %s as wanted: %+v", name, m.Snapshot())
}

// Only the interfaces named in Options.Interfaces are reported, including
// one that does not exist when the monitor starts.
func TestFilter(t *testing.T) {
	requireNS(t)
	forEachMode(t, func(t *testing.T, poll bool) {
		want, other := "pmfa"+map[bool]string{false: "0", true: "1"}[poll], "pmfb"+map[bool]string{false: "0", true: "1"}[poll]
		m, r := newMonitor(t, poll, want)
		if len(m.Snapshot()) != 0 {
			t.Errorf("Snapshot %+v, want nothing: %s does not exist yet", m.Snapshot(), want)
		}
		lo := addLink(t, other)
		must(t, netlink.LinkSetUp(lo))
		addAddr(t, lo, netip.MustParsePrefix("10.78.0.1/24"))
		l := addLink(t, want)
		r.wait(t, InterfaceAdded, want, netip.Prefix{})
		must(t, netlink.LinkSetUp(l))
		r.wait(t, InterfaceUp, want, netip.Prefix{})
		for _, ev := range r.all() {
			if ev.Interface != want {
				t.Errorf("event for %s, which is not watched: %v", ev.Interface, ev)
			}
		}
		if s := m.Snapshot(); len(s) != 1 || s[0].Name != want {
			t.Errorf("Snapshot %+v, want only %s", s, want)
		}
	})
}

// Watch gives each caller every change; several watchers do not disturb
// one another.
func TestWatch(t *testing.T) {
	requireNS(t)
	forEachMode(t, func(t *testing.T, poll bool) {
		name := "pmw" + map[bool]string{false: "0", true: "1"}[poll]
		m, _ := newMonitor(t, poll, name)
		var wg sync.WaitGroup
		const watchers = 2
		errs := make(chan error, watchers)
		sawAdded := make(chan struct{}, watchers)
		for range watchers {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			wg.Go(func() {
				var got []string
				err := m.Watch(ctx, func(ev Event) {
					switch ev.Kind {
					case InterfaceAdded, InterfaceRemoved:
						got = append(got, ev.Kind.String())
					}
					switch ev.Kind {
					case InterfaceAdded:
						sawAdded <- struct{}{}
					case InterfaceRemoved:
						cancel()
					}
				})
				if fmt.Sprint(got) != "[InterfaceAdded InterfaceRemoved]" {
					errs <- fmt.Errorf("watcher saw %v (Watch returned %v)", got, err)
				}
			})
		}
		// The interface is added once both watchers have subscribed
		// (Events is the monitor's third consumer), and removed once both
		// saw it: a poller misses what comes and goes between two reads.
		waitSubs(t, m, watchers+1)
		l := addLink(t, name)
		for range watchers {
			select {
			case <-sawAdded:
			case <-time.After(waitTimeout):
				t.Fatal("watchers did not see the interface added")
			}
		}
		must(t, netlink.LinkDel(l))
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// waitSubs waits until the monitor has n consumers (Events and watchers).
func waitSubs(t *testing.T, m *Monitor, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		k := len(m.subs)
		m.mu.Unlock()
		if k >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("watchers did not subscribe")
}
