//go:build linux

package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/pathmon"
)

// Tests of following the network. The in-process ones change the
// addresses of lo, so they need root in the test binary's own network
// namespace (go test -exec .ci/netns-exec); the multi-host ones use an
// internal/netns lab.

// requirePrivateLo skips unless the test may change lo: root, and nothing
// but lo in this network namespace (so it is the test binary's own).
func requirePrivateLo(t *testing.T) {
	t.Helper()
	ifis, err := net.Interfaces()
	private := err == nil && len(ifis) == 1 && ifis[0].Name == "lo" && os.Geteuid() == 0
	netns.Require(t, "root in a private network namespace holding only lo (go test -exec \"$PWD/.ci/netns-exec\")", private)
}

func ipAddr(t *testing.T, op string, p netip.Prefix) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "addr", op, p.String(), "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr %s %s dev lo: %v: %s", op, p, err, out)
	}
}

func newMonitor(t *testing.T, opts pathmon.Options) *pathmon.Monitor {
	t.Helper()
	m, err := pathmon.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() }) // registered first, so it runs after the responder's Close
	return m
}

// A responder with Config.Monitor announces an address added to its
// interface and says goodbye (TTL 0, no cache-flush bit) for one removed;
// a browser follows both, by itself.
func TestResponderFollowsAddresses(t *testing.T) {
	requirePrivateLo(t)
	extra := netip.MustParsePrefix("10.55.0.1/32")
	mon := newMonitor(t, pathmon.Options{Interfaces: []string{"lo"}})
	cfg := loConfig(t)
	cfg.Monitor = mon
	typ := testType(t)
	r := mustResponder(t, cfg)
	reg := register(t, r, Service{Instance: "Follower", Type: typ, Port: 1})
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	if s := ev.wait(t, Found, "Follower", 10*time.Second).Service; fmt.Sprint(s.Addrs) != withLo6(t, "[127.0.0.1]") {
		t.Fatalf("found at %v", s.Addrs)
	}
	raw := newRawClient(t, mdnsPort)

	ipAddr(t, "add", extra)
	t.Cleanup(func() { exec.Command("ip", "addr", "del", extra.String(), "dev", "lo").Run() })
	waitUpdated(t, ev, "Follower", withLo6(t, "[10.55.0.1 127.0.0.1]"))

	ipAddr(t, "del", extra)
	host := reg.Service().Host
	if _, ok := raw.recv(t, 30*time.Second, func(m rawMsg) bool {
		for _, rr := range m.m.Answer {
			if a, ok := rr.(*dns.A); ok && equalFold(a.Hdr.Name, host) && a.A.String() == "10.55.0.1" && a.Hdr.Ttl == 0 {
				return a.Hdr.Class == dns.ClassINET
			}
		}
		return false
	}); !ok {
		t.Error("no goodbye (TTL 0, class IN without the cache-flush bit) for the removed address")
	}
	waitUpdated(t, ev, "Follower", withLo6(t, "[127.0.0.1]"))
}

// waitUpdated waits for an Updated event for inst whose addresses print
// as addrs.
func waitUpdated(t *testing.T, ev *events, inst, addrs string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		e := ev.wait(t, Updated, inst, time.Until(deadline))
		if fmt.Sprint(e.Service.Addrs) == addrs {
			return
		}
	}
	t.Fatalf("no Updated event for %q with addresses %s; events: %s", inst, addrs, ev.summary())
}

// Reannounce without a monitor does the same when called: after an
// address is removed, it says goodbye for it.
func TestReannounceSaysGoodbye(t *testing.T) {
	requirePrivateLo(t)
	extra := netip.MustParsePrefix("10.55.0.2/32")
	ipAddr(t, "add", extra)
	t.Cleanup(func() { exec.Command("ip", "addr", "del", extra.String(), "dev", "lo").Run() })
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	register(t, r, Service{Instance: "Explicit", Type: typ, Port: 1})
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	if s := ev.wait(t, Found, "Explicit", 10*time.Second).Service; fmt.Sprint(s.Addrs) != withLo6(t, "[10.55.0.2 127.0.0.1]") {
		t.Fatalf("found at %v", s.Addrs)
	}
	ipAddr(t, "del", extra)
	if err := r.Reannounce(); err != nil {
		t.Fatal(err)
	}
	waitUpdated(t, ev, "Explicit", withLo6(t, "[127.0.0.1]"))
	r.Close()
	if err := r.Reannounce(); err != ErrClosed {
		t.Errorf("Reannounce after Close = %v, want ErrClosed", err)
	}
}

// withLo6 adds lo's IPv6 address, if it has one, to a list of addresses as
// fmt prints them: a responder on lo announces it too, after the IPv4 ones.
func withLo6(t *testing.T, addrs string) string {
	t.Helper()
	for _, a := range loAddrs(t) {
		if a.Is6() {
			addrs = strings.TrimSuffix(addrs, "]") + " " + a.String() + "]"
		}
	}
	return addrs
}
