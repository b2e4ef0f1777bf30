//go:build linux

package dgram

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
)

// in runs fn inside host h's network namespace. Listen, and anything that
// looks up the path MTU (NewFlow does not; MaxSize and Send may), must run
// there: the route lookup uses the calling thread's namespace.
func in(t *testing.T, h *netns.Host, fn func() error) {
	t.Helper()
	if err := h.Do(fn); err != nil {
		t.Fatalf("%s: %v", h.Name, err)
	}
}

// TestNamespaces runs flows between two hosts on a bridge: a round trip at
// the default MTU, then MaxSize on a 1280-byte link, found both by lookup and
// by the kernel refusing a datagram for a flow that still assumed 1500.
func TestNamespaces(t *testing.T) { testNamespaces(t, false) }

// TestNamespacesIPv6 is TestNamespaces between two IPv6-only hosts, over
// their link-local addresses (with zones): the IPv6 header is 40 bytes, and
// 1280 is the smallest MTU IPv6 allows.
func TestNamespacesIPv6(t *testing.T) { testNamespaces(t, true) }

func testNamespaces(t *testing.T, v6 bool) {
	var lab *netns.Lab
	network, laddr, ipHeader := "udp4", "0.0.0.0:0", 20
	if v6 {
		lab = netns.NewIPv6Only(t, "a", "b")
		network, laddr, ipHeader = "udp6", "[::]:0", 40
	} else {
		lab = netns.New(t, "a", "b")
	}
	ha, hb := lab.Host("a"), lab.Host("b")
	addrA, addrB := ha.Addr(), hb.Addr()
	if v6 {
		// Zones by index: the flows' receiving goroutines run in the
		// test's namespace, where "eth0" names nothing, so they know the
		// peers' zones by number only.
		index := func(h *netns.Host) string {
			var idx int
			in(t, h, func() error {
				ifi, err := net.InterfaceByName("eth0")
				if err == nil {
					idx = ifi.Index
				}
				return err
			})
			return strconv.Itoa(idx)
		}
		addrA, addrB = ha.LinkLocal(t).WithZone(index(ha)), hb.LinkLocal(t).WithZone(index(hb))
	}
	headers := ipHeader + 8
	var ma, mb *Mux
	in(t, ha, func() (err error) { ma, err = Listen(network, laddr, nil); return })
	defer ma.Close()
	in(t, hb, func() (err error) { mb, err = Listen(network, laddr, nil); return })
	defer mb.Close()

	for _, secure := range []bool{true, false} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			for _, h := range []*netns.Host{ha, hb} {
				if err := h.SetMTU(1500); err != nil {
					t.Fatal(err)
				}
			}
			// A grown MTU shows after the cache's second; don't wait it out.
			ma.mtus.forget(addrB)
			mb.mtus.forget(addrA)
			overhead := SealedOverhead
			var ka, kb *Keys
			if secure {
				ka, kb = testKeys(t)
			} else {
				overhead = PlainOverhead
			}
			sa, sb := NewSessionID(), NewSessionID()
			a, err := ma.NewFlow(FlowConfig{LocalSession: sa, RemoteSession: sb, RemoteAddr: netip.AddrPortFrom(addrB, uint16(mb.Port())), Keys: ka})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := mb.NewFlow(FlowConfig{LocalSession: sb, RemoteSession: sa, Keys: kb})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()

			// Round trip at MTU 1500, at the largest size.
			var max int
			in(t, ha, func() error {
				max = a.MaxSize()
				return a.Send(bytes.Repeat([]byte{'a'}, max))
			})
			if want := 1500 - headers - overhead; max != want {
				t.Fatalf("MaxSize at MTU 1500 = %d, want %d", max, want)
			}
			if got := recv(t, b); len(got) != max || got[0] != 'a' {
				t.Fatalf("b got %d bytes", len(got))
			}
			if got, want := b.RemoteAddr(), netip.AddrPortFrom(addrA, uint16(ma.Port())); got != want {
				t.Fatalf("b learned %s, want %s", got, want)
			}
			in(t, hb, func() error { return b.Send(bytes.Repeat([]byte{'b'}, max)) })
			if got := recv(t, a); len(got) != max || got[0] != 'b' {
				t.Fatalf("a got %d bytes", len(got))
			}

			// The link shrinks to 1280 under the flows.
			for _, h := range []*netns.Host{ha, hb} {
				if err := h.SetMTU(1280); err != nil {
					t.Fatal(err)
				}
			}
			want := 1280 - headers - overhead
			var tl *TooLargeError
			in(t, hb, func() error {
				// b still assumes 1500: the kernel refuses (don't-fragment).
				err := b.Send(bytes.Repeat([]byte{'b'}, max))
				if !errors.As(err, &tl) || tl.Max != want {
					return fmt.Errorf("Send(%d bytes) after the MTU dropped = %v, want TooLargeError with Max %d", max, err, want)
				}
				if got := b.MaxSize(); got != want {
					return fmt.Errorf("MaxSize = %d, want %d", got, want)
				}
				return nil
			})
			in(t, ha, func() error {
				a.mux.mtus.forget(addrB)
				if got := a.refreshMaxSize(a.peer.Load()); got != want {
					return fmt.Errorf("MaxSize at MTU 1280 = %d, want %d", got, want)
				}
				if err := a.Send(bytes.Repeat([]byte{'x'}, want)); err != nil {
					return fmt.Errorf("Send(MaxSize): %v", err)
				}
				err := a.Send(bytes.Repeat([]byte{'x'}, want+1))
				if !errors.As(err, &tl) || tl.Max != want || tl.Size != want+1 {
					return fmt.Errorf("Send(MaxSize+1) = %v, want TooLargeError{%d, %d}", err, want+1, want)
				}
				// Don't-fragment is set: the socket itself refuses a
				// datagram over the link MTU, whatever the flow thinks.
				if err := ma.sock.write(make([]byte, 1280-headers+1), a.peer.Load()); err != errMsgSize {
					return fmt.Errorf("raw send of %d bytes on a 1280 link: %v, want EMSGSIZE", 1280-headers+1, err)
				}
				return nil
			})
			if got := recv(t, b); len(got) != want || got[0] != 'x' {
				t.Fatalf("b got %d bytes, want %d", len(got), want)
			}
			in(t, hb, func() error { return b.Send(make([]byte, want)) })
			if got := recv(t, a); len(got) != want {
				t.Fatalf("a got %d bytes, want %d", len(got), want)
			}
			if st := a.Stats(); st.Dropped.TooLarge != 1 || st.Sent != 2 {
				t.Errorf("a stats %+v", st)
			}
			if st := b.Stats(); st.Dropped.TooLarge != 1 || st.Sent != 2 || st.Received != 2 {
				t.Errorf("b stats %+v", st)
			}
		})
	}
	// Nothing was fragmented or reassembled on either host.
	for _, h := range []*netns.Host{ha, hb} {
		if v6 {
			snmp := ip6Stats(t, h)
			for _, k := range []string{"Ip6FragCreates", "Ip6FragOKs", "Ip6ReasmReqds"} {
				if snmp[k] != 0 {
					t.Errorf("%s: %s = %d, want 0", h.Name, k, snmp[k])
				}
			}
			continue
		}
		snmp := ipStats(t, h)
		for _, k := range []string{"FragCreates", "FragOKs", "ReasmReqds"} {
			if snmp[k] != 0 {
				t.Errorf("%s: Ip %s = %d, want 0", h.Name, k, snmp[k])
			}
		}
	}
}

// ip6Stats returns the counters of /proc/net/snmp6 inside h.
func ip6Stats(t *testing.T, h *netns.Host) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "cat", "/proc/net/snmp6")
	if err != nil {
		t.Fatal(err)
	}
	stats := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			stats[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if _, ok := stats["Ip6FragCreates"]; !ok {
		t.Fatalf("no Ip6FragCreates in %q", out)
	}
	return stats
}

// ipStats returns the Ip: counters of /proc/net/snmp inside h.
func ipStats(t *testing.T, h *netns.Host) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	stats := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				stats[names[i]], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	if len(stats) == 0 {
		t.Fatalf("no Ip: counters in %q", out)
	}
	return stats
}

// TestSendNeverBlocks: behind a 1 Mbit/s link (a tbf qdisc) the socket's
// send buffer fills up. Send keeps returning at once, counting what the OS
// had no room for, where a blocking send would wait for the link: 2000
// datagrams of 1200 bytes take 19 s at 1 Mbit/s.
func TestSendNeverBlocks(t *testing.T) {
	netns.RequireCommands(t, "tc")
	lab := netns.New(t, "a", "b")
	ha, hb := lab.Host("a"), lab.Host("b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ha.Run(ctx, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "1mbit", "burst", "16kb", "limit", "10mb"); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{SocketBuffer: 64 << 10}
	var ma, mb *Mux
	in(t, ha, func() (err error) { ma, err = Listen("udp4", "0.0.0.0:0", cfg); return })
	defer ma.Close()
	in(t, hb, func() (err error) { mb, err = Listen("udp4", "0.0.0.0:0", cfg); return })
	defer mb.Close()
	ka, kb := testKeys(t)
	sa, sb := NewSessionID(), NewSessionID()
	a, err := ma.NewFlow(FlowConfig{LocalSession: sa, RemoteSession: sb, RemoteAddr: netip.AddrPortFrom(hb.Addr(), uint16(mb.Port())), Keys: ka})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := mb.NewFlow(FlowConfig{LocalSession: sb, RemoteSession: sa, Keys: kb})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	const n = 2000
	payload := make([]byte, 1200)
	start := time.Now()
	in(t, ha, func() error {
		for range n {
			if err := a.Send(payload); err != nil {
				return err
			}
		}
		return nil
	})
	took := time.Since(start)
	st := a.Stats()
	t.Logf("%d sends in %v: %+v", n, took, st)
	if took > 5*time.Second {
		t.Fatalf("%d sends took %v: Send waited for the link", n, took)
	}
	if st.Dropped.SendBuffer == 0 || st.Sent+st.Dropped.SendBuffer != n {
		t.Fatalf("stats %+v: want every datagram sent or counted as dropped for a full send buffer", st)
	}
	// What was sent still arrives.
	recv(t, b)
}
