//go:build linux

package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nearnet/nearnet/internal/netns"
)

// Multi-host tests: hosts of an internal/netns lab (network namespaces on
// one bridge, host N with address 10.99.0.N/24 on its eth0), with our code
// running in them as helper processes (startHelper) and Avahi as an
// independent mDNS implementation. Nothing touches the machine's own
// interfaces. The tests need root, iproute2 and, for the Avahi ones,
// avahi-daemon, avahi-utils and dbus. Without them they skip, unless
// NEARNET_INTEROP=required, which turns the skip into a failure:
//
//	NEARNET_INTEROP=required unshare -n sh -c 'ip link set lo up && go test -run Interop ./discovery'

func TestInteropAvahiSeesOurResponder(t *testing.T) {
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	// IPv4 only: avahi-browse prints one address of a service, and with
	// an AAAA record beside the A it may print either (TestInteropAvahiIPv6Only
	// covers IPv6).
	if err := a.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	b.StartAvahi(t)
	// Our responder in host a, on the default interface selection (eth0;
	// lo is excluded).
	h := startHelper(t, a, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Nearnet Interop", "NN_PORT=4242", "NN_TXT=id=xyz;v=1")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := b.AvahiFind(ctx, "_nearnet._tcp", func(s netns.AvahiService) bool { return s.Name == "Nearnet Interop" })
	if err != nil {
		t.Fatalf("avahi-browse did not resolve %q: %v", "Nearnet Interop", err)
	}
	t.Logf("avahi-browse: %+v", s)
	if s.Address != "10.99.0.1" || s.Port != 4242 {
		t.Errorf("avahi resolved address %s port %d, want 10.99.0.1 4242: %+v", s.Address, s.Port, s)
	}
	if !strings.HasPrefix(s.Host, "nn-") || !slices.Contains(s.TXT, "id=xyz") || !slices.Contains(s.TXT, "v=1") {
		t.Errorf("avahi resolved host %s txt %q", s.Host, s.TXT)
	}
}

const avahiService = `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>Avahi Peer</name>
  <service>
    <type>_nearnet._tcp</type>
    <port>4711</port>
    <txt-record>id=avahi1</txt-record>
    <txt-record>v=1</txt-record>
  </service>
</service-group>
`

func TestInteropWeSeeAvahi(t *testing.T) {
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	av := b.StartAvahi(t)
	av.AddServiceFile(t, "nearnet.service", avahiService)
	h := startHelper(t, a, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")

	// A static service from Avahi's service directory.
	ev := h.waitEvent(t, 20*time.Second, func(ev Event) bool { return ev.Kind == Found && ev.Service.Instance == "Avahi Peer" })
	s := ev.Service
	if s.Port != 4711 || s.TXT["id"] != "avahi1" || s.TXT["v"] != "1" || s.Host != av.HostName+".local." || s.Interface != "eth0" ||
		len(s.Addrs) != 1 || s.Addrs[0].String() != "10.99.0.2" {
		t.Errorf("found %+v", s)
	}

	// A service published over D-Bus, then withdrawn: Avahi's goodbye
	// makes it Lost.
	pub := b.AvahiPublish(t, "Published Peer", "_nearnet._tcp", 4712, "k=v")
	ev = h.waitEvent(t, 20*time.Second, func(ev Event) bool { return ev.Kind == Found && ev.Service.Instance == "Published Peer" })
	if ev.Service.Port != 4712 || ev.Service.TXT["k"] != "v" {
		t.Errorf("found %+v", ev.Service)
	}
	if err := pub.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Lost && ev.Service.Instance == "Published Peer" })
}

// Avahi owns "Avahi Peer": our responder must rename its registration.
func TestInteropConflictWithAvahi(t *testing.T) {
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	// Returns once Avahi has probed for its name and established it.
	b.StartAvahi(t).AddServiceFile(t, "nearnet.service", avahiService)
	h := startHelper(t, a, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Avahi Peer", "NN_PORT=1")
	if got := h.waitLine(t, "REGISTERED", 20*time.Second); got != "REGISTERED Avahi Peer (2)" {
		t.Errorf("helper says %q, want a rename to \"Avahi Peer (2)\"", got)
	}
}

// Two hosts joined by two links, eth0 through the lab's bridge and eth1 a
// direct pair: each link carries only its own address, and a browser on
// both links sees one service with both addresses.
func TestInteropTwoInterfaces(t *testing.T) {
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	lab.Wire(a, b, "eth1", netip.MustParsePrefix("10.98.2.0/24"))
	h := startHelper(t, a, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Dual", "NN_PORT=99")
	h.waitLine(t, "REGISTERED", 15*time.Second)

	one := startHelper(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp", "NN_IFACES=eth1")
	ev := one.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Found })
	if got := v4(ev.Service.Addrs); got != "[10.98.2.1]" || ev.Service.Interface != "eth1" || !zonesAre(ev.Service.Addrs, "eth1") {
		t.Errorf("on eth1 only: addrs %s iface %s, want [10.98.2.1] eth1", got, ev.Service.Interface)
	}

	both := startHelper(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")
	ev = both.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return (ev.Kind == Found || ev.Kind == Updated) && v4(ev.Service.Addrs) == "[10.98.2.1 10.99.0.1]"
	})
	if got := v4(ev.Service.Addrs); got != "[10.98.2.1 10.99.0.1]" {
		t.Errorf("on both links: addrs %s, want [10.98.2.1 10.99.0.1]", got)
	}
	// a's link-local address on eth0 is reported with eth0 as its zone,
	// whatever else was learned on eth1: it is never dialled there.
	ll := a.LinkLocal(t)
	if !slices.Contains(ev.Service.Addrs, ll) {
		t.Errorf("on both links: addrs %v, want %s among them", ev.Service.Addrs, ll)
	}
	for _, x := range ev.Service.Addrs {
		if x.WithZone("") == ll.WithZone("") && x.Zone() != "eth0" {
			t.Errorf("a's eth0 link-local address reported as %s", x)
		}
	}
	// Found exactly once, however many links and families it was seen on.
	time.Sleep(500 * time.Millisecond)
	both.stop()
	founds := 0
	for _, line := range both.output() {
		if strings.Contains(line, `"Kind":"Found"`) {
			founds++
		}
	}
	if founds != 1 {
		t.Errorf("service Found %d times on two links, want once:\n%s", founds, strings.Join(both.output(), "\n"))
	}
}

// A QU query from another host is answered by unicast, since the record
// was multicast recently (RFC 6762 §5.4).
func TestInteropQUAnswer(t *testing.T) {
	lab := netns.New(t, "a", "b")
	h := startHelper(t, lab.Host("a"), helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=QU Target", "NN_PORT=5")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	q := startHelper(t, lab.Host("b"), helperEnv+"=qu", "NN_TYPE=_nearnet._tcp")
	if got := q.waitLine(t, "", 10*time.Second); got != "UNICAST" {
		t.Errorf("QU query answered: %s, want UNICAST", got)
	}
}

// When the responder's address changes and it re-announces, browsers
// learn the new address and, through the cache-flush bit, forget the old.
func TestInteropAddressChange(t *testing.T) {
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	h := startHelper(t, a, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Mover", "NN_PORT=5", "NN_TXT=v=1")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	br := startHelper(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")
	br.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return ev.Kind == Found && v4(ev.Service.Addrs) == "[10.99.0.1]"
	})
	// Renumber host a: its old address goes, the new one comes.
	if err := a.SetAddr(netip.MustParsePrefix("10.99.0.51/24")); err != nil {
		t.Fatal(err)
	}
	h.send(t, "reannounce") // reads the addresses afresh: no cache to wait out
	h.waitLine(t, "OK", 5*time.Second)
	br.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return ev.Kind == Updated && v4(ev.Service.Addrs) == "[10.99.0.51]"
	})
	// And a TXT change over the real link.
	h.send(t, "settxt v=2")
	h.waitLine(t, "OK", 5*time.Second)
	br.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Updated && ev.Service.TXT["v"] == "2" })
}

// With Config.Monitor, host a's responder follows its own renumbering with
// no call from us: host b's browser, and Avahi on b, see the new address,
// and an extra address that comes and goes.
func TestInteropFollowsAddressChange(t *testing.T) {
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	// IPv4 only, so that Avahi resolves Follower at its IPv4 address (see
	// TestInteropAvahiSeesOurResponder).
	if err := a.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	netns.RequireCommands(t, "avahi-daemon", "avahi-browse", "dbus-daemon")
	b.StartAvahi(t)
	h := startHelper(t, a, helperEnv+"=respond", "NN_MONITOR=1", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Follower", "NN_PORT=5")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	br := startHelper(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")
	br.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return ev.Kind == Found && v4(ev.Service.Addrs) == "[10.99.0.1]"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	avahiAt := func(addr string) {
		t.Helper()
		if _, err := b.AvahiFind(ctx, "_nearnet._tcp", func(s netns.AvahiService) bool {
			return s.Name == "Follower" && s.Address == addr
		}); err != nil {
			t.Fatalf("Avahi never resolved Follower at %s: %v", addr, err)
		}
	}
	avahiAt("10.99.0.1")

	if err := a.SetAddr(netip.MustParsePrefix("10.99.0.51/24")); err != nil {
		t.Fatal(err)
	}
	br.waitEvent(t, 30*time.Second, func(ev Event) bool {
		return ev.Kind == Updated && v4(ev.Service.Addrs) == "[10.99.0.51]"
	})
	avahiAt("10.99.0.51")

	extra := netip.MustParsePrefix("10.99.0.61/24")
	if err := a.AddAddr(extra); err != nil {
		t.Fatal(err)
	}
	br.waitEvent(t, 30*time.Second, func(ev Event) bool {
		return ev.Kind == Updated && v4(ev.Service.Addrs) == "[10.99.0.51 10.99.0.61]"
	})
	if err := a.DelAddr(extra); err != nil {
		t.Fatal(err)
	}
	br.waitEvent(t, 30*time.Second, func(ev Event) bool {
		return ev.Kind == Updated && v4(ev.Service.Addrs) == "[10.99.0.51]"
	})
}

// An interface that appears is joined by a following responder and
// browser, and one that goes away is dropped without harm: a's responder
// and b's browser both use the default interface selection and a monitor.
func TestInteropFollowsInterfaces(t *testing.T) {
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	h := startHelper(t, a, helperEnv+"=respond", "NN_MONITOR=1", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Roamer", "NN_PORT=7")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	br := startHelper(t, b, helperEnv+"=browse", "NN_MONITOR=1", "NN_TYPE=_nearnet._tcp")
	br.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return ev.Kind == Found && v4(ev.Service.Addrs) == "[10.99.0.1]"
	})

	lab.Wire(a, b, "eth1", netip.MustParsePrefix("10.98.2.0/24"))
	br.waitEvent(t, 30*time.Second, func(ev Event) bool {
		return ev.Kind == Updated && v4(ev.Service.Addrs) == "[10.98.2.1 10.99.0.1]"
	})
	// A browser started on eth1 alone finds it there too.
	one := startHelper(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp", "NN_IFACES=eth1")
	one.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return ev.Kind == Found && v4(ev.Service.Addrs) == "[10.98.2.1]" && ev.Service.Interface == "eth1"
	})
	one.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Run(ctx, "ip", "link", "del", "eth1"); err != nil {
		t.Fatal(err)
	}
	br.waitEvent(t, 30*time.Second, func(ev Event) bool {
		return ev.Kind == Updated && v4(ev.Service.Addrs) == "[10.99.0.1]"
	})
	h.send(t, "reannounce")
	if got := h.waitLine(t, "", 10*time.Second); got != "OK" {
		t.Errorf("reannounce after eth1 went away: %s", got)
	}
	h.send(t, "settxt v=3")
	h.waitLine(t, "OK", 10*time.Second)
	br.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Updated && ev.Service.TXT["v"] == "3" })
}

// v4 prints the IPv4 addresses of addrs: the lab's hosts also have IPv6
// link-local addresses, which come and go with duplicate address detection.
func v4(addrs []netip.Addr) string {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is4() {
			out = append(out, a)
		}
	}
	return fmt.Sprint(out)
}

// zonesAre reports whether every IPv6 link-local address in addrs has zone
// iface, and no other address has a zone.
func zonesAre(addrs []netip.Addr, iface string) bool {
	for _, a := range addrs {
		if a.Is6() && a.IsLinkLocalUnicast() != (a.Zone() == iface) {
			return false
		}
	}
	return true
}

// Two hosts with only IPv6 link-local addresses: our responder probes,
// announces and says goodbye over IPv6 alone, and our browser finds it at
// its link-local address with the interface as zone, once.
func TestInteropIPv6Only(t *testing.T) {
	lab := netns.NewIPv6Only(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	h := startHelper(t, a, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Six", "NN_PORT=6", "NN_TXT=v=1")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	br := startHelper(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")
	ev := br.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Found && ev.Service.Instance == "Six" })
	if want := a.LinkLocal(t); fmt.Sprint(ev.Service.Addrs) != fmt.Sprint([]netip.Addr{want}) || ev.Service.Interface != "eth0" || ev.Service.Port != 6 {
		t.Errorf("found %+v, want port 6 at [%s] on eth0", ev.Service, want)
	}
	h.send(t, "settxt v=2")
	h.waitLine(t, "OK", 5*time.Second)
	br.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Updated && ev.Service.TXT["v"] == "2" })
	// A second responder claiming the same name on the other host is
	// renamed: probing works over IPv6.
	h2 := startHelper(t, b, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Six", "NN_PORT=7")
	if got := h2.waitLine(t, "REGISTERED", 15*time.Second); got != "REGISTERED Six (2)" {
		t.Errorf("second responder: %q, want a rename to \"Six (2)\"", got)
	}
	h.stop() // goodbye
	br.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Lost && ev.Service.Instance == "Six" })
}

// Avahi with use-ipv6=yes on an IPv6-only link sees our service at our
// link-local address, and we see Avahi's at its.
func TestInteropAvahiIPv6Only(t *testing.T) {
	lab := netns.NewIPv6Only(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	av := b.StartAvahi(t)
	av.AddServiceFile(t, "nearnet.service", avahiService)
	h := startHelper(t, a, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Nearnet Six", "NN_PORT=4243", "NN_TXT=id=six")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := b.AvahiFind(ctx, "_nearnet._tcp", func(s netns.AvahiService) bool { return s.Name == "Nearnet Six" })
	if err != nil {
		t.Fatalf("avahi-browse did not resolve %q: %v", "Nearnet Six", err)
	}
	if want := a.LinkLocal(t).WithZone(""); s.Protocol != "IPv6" || s.Address != want.String() || s.Port != 4243 || !slices.Contains(s.TXT, "id=six") {
		t.Errorf("avahi resolved %+v, want %s port 4243 over IPv6", s, want)
	}

	br := startHelper(t, a, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")
	ev := br.waitEvent(t, 20*time.Second, func(ev Event) bool { return ev.Kind == Found && ev.Service.Instance == "Avahi Peer" })
	if want := b.LinkLocal(t); fmt.Sprint(ev.Service.Addrs) != fmt.Sprint([]netip.Addr{want}) || ev.Service.Port != 4711 ||
		ev.Service.Host != av.HostName+".local." || ev.Service.TXT["id"] != "avahi1" {
		t.Errorf("found %+v, want Avahi's service at [%s] port 4711", ev.Service, want)
	}
}

// raw6 is a test peer speaking raw mDNS over IPv6 alone, on eth0 of a lab
// host, from this process: its socket and its sends are made inside the
// host's namespace, and what it receives is decoded with miekg/dns's
// strict Unpack.
type raw6 struct {
	h *netns.Host
	c *mconn
	l *link
}

func newRaw6(t *testing.T, h *netns.Host) *raw6 {
	t.Helper()
	r := &raw6{h: h}
	if err := h.Do(func() error {
		links, err := resolveLinks(hostNet{}, []string{"eth0"})
		if err != nil {
			return err
		}
		r.l = links[0]
		r.c, err = openConn(hostNet{}, links, mdnsPort, testLogger(t), &counters{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.c.close() })
	if r.c.pc6 == nil {
		t.Fatal("no IPv6 socket")
	}
	return r
}

func (r *raw6) send(t *testing.T, m *dns.Msg) {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.h.Do(func() error { return r.c.send6(r.l, b) }); err != nil {
		t.Fatal(err)
	}
}

// recv returns the first message received over IPv6 for which match is
// true, or false after timeout.
func (r *raw6) recv(t *testing.T, timeout time.Duration, match func(*dns.Msg) bool) (*dns.Msg, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		_ = r.c.pc6.SetReadDeadline(deadline)
		n, _, src, err := r.c.pc6.ReadFrom(buf)
		if err != nil {
			break
		}
		if ua, ok := src.(*net.UDPAddr); !ok || ua.IP.To4() != nil || !ua.IP.IsLinkLocalUnicast() {
			t.Errorf("IPv6 packet from %v, want a link-local source", src)
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) == nil && match(m) {
			return m, true
		}
	}
	return nil, false
}

// Over IPv6 alone, checked packet by packet: the responder answers a query
// with its link-local address in an AAAA record, suppresses an answer the
// query lists as known, and says goodbye (TTL 0) when it stops.
func TestInteropRawIPv6(t *testing.T) {
	lab := netns.NewIPv6Only(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	h := startHelper(t, a, helperEnv+"=respond", "NN_TYPE=_nnraw6._tcp", "NN_INSTANCE=Raw", "NN_PORT=8")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	q := newRaw6(t, b)
	svc := "_nnraw6._tcp.local."
	inst := "Raw." + svc
	hasPTR := func(m *dns.Msg) bool { return m.Response && hasRR(m, svc, dns.TypePTR) }
	query := func(known uint32) {
		m := new(dns.Msg)
		m.Question = []dns.Question{{Name: svc, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
		if known > 0 {
			m.Answer = []dns.RR{newPTR(svc, inst, known)}
		}
		q.send(t, m)
	}

	query(0)
	m, ok := q.recv(t, 5*time.Second, hasPTR)
	if !ok {
		t.Fatal("no answer over IPv6")
	}
	var six []string
	for _, rr := range append(m.Answer, m.Extra...) {
		if rr, ok := rr.(*dns.AAAA); ok {
			six = append(six, rr.AAAA.String())
		}
		if rr.Header().Rrtype == dns.TypeA {
			t.Errorf("A record %v from a host without IPv4", rr)
		}
	}
	if want := a.LinkLocal(t).WithZone("").String(); !slices.Equal(six, []string{want}) {
		t.Errorf("AAAA records %v, want [%s]", six, want)
	}

	// Past the one-second rate limit, a query that lists the answer with
	// its full TTL gets none; one whose known answer is past half its TTL
	// gets one.
	time.Sleep(rateLimit + 200*time.Millisecond)
	query(ttlOther)
	if _, ok := q.recv(t, 600*time.Millisecond, hasPTR); ok {
		t.Error("answered although the query listed the answer as known")
	}
	query(ttlOther/2 - 1)
	if _, ok := q.recv(t, 5*time.Second, hasPTR); !ok {
		t.Error("no answer when the known answer had less than half its TTL left")
	}

	h.stop()
	if _, ok := q.recv(t, 5*time.Second, func(m *dns.Msg) bool {
		for _, rr := range m.Answer {
			if rr.Header().Rrtype == dns.TypePTR && rr.Header().Ttl == 0 {
				return true
			}
		}
		return false
	}); !ok {
		t.Error("no goodbye over IPv6")
	}
}
