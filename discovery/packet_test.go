package discovery

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The fuzz seeds use their own service type, so that a responder fuzzed on
// loopback cannot disturb other tests browsing for _nearnet._tcp.
const (
	fuzzType = "_nnfuzz._tcp"
	fuzzInst = "Peer (2)"
	fuzzHost = "nn-0123456789abcdef.local."
)

// seedPackets returns packets as this package sends them.
func seedPackets(t testing.TB) [][]byte {
	svc := fuzzType + ".local."
	inst := instanceName(fuzzInst, fuzzType, "local.")
	host := fuzzHost
	enc, _ := EncodeTXT(map[string]string{"id": "abc", "v": "1"})
	srv, txt, a := newSRV(inst, host, 4242, ttlHost), newTXT(inst, enc, ttlOther), newA(host, netip.MustParseAddr("192.168.1.2"), ttlHost)
	var out [][]byte
	add := func(pk [][]byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pk...)
	}
	ans, extra := flatten([]cand{{rr: newPTR(svc, inst, ttlOther), extra: []cand{{rr: srv, unique: true}, {rr: txt, unique: true}, {rr: a, unique: true}, {rr: newNSEC(host, ttlHost, dns.TypeA), unique: true}}}}, false)
	add(packSplit(dns.MsgHdr{Response: true, Authoritative: true}, nil, ans, nil, extra, 1472, false))
	add(packSplit(dns.MsgHdr{}, []dns.Question{{Name: inst, Qtype: dns.TypeANY, Qclass: dns.ClassINET}}, nil, []dns.RR{srv, txt, a}, nil, 1472, true))
	add(packSplit(dns.MsgHdr{}, []dns.Question{{Name: svc, Qtype: dns.TypePTR, Qclass: dns.ClassINET | classUnicast}}, []dns.RR{newPTR(svc, inst, 3000)}, nil, nil, 1472, true))
	add(packSplit(dns.MsgHdr{Id: 7, Response: true}, []dns.Question{{Name: svc, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}, []dns.RR{withTTL(txt, 0, true)}, nil, nil, 1472, false))
	// An IPv6 answer, as a dual-stack responder sends it (an odd ID: the
	// fuzz target takes it as received on eth0), and one with every kind
	// of address a browser must ignore.
	six := newAAAA(host, netip.MustParseAddr("fe80::1"), ttlHost)
	ans, extra = flatten([]cand{{rr: newPTR(svc, inst, ttlOther), extra: []cand{{rr: srv, unique: true}, {rr: txt, unique: true}, {rr: a, unique: true}, {rr: six, unique: true}, {rr: newNSEC(host, ttlHost, dns.TypeA, dns.TypeAAAA), unique: true}}}}, false)
	add(packSplit(dns.MsgHdr{Id: 1, Response: true, Authoritative: true}, nil, ans, nil, extra, 1472, false))
	add(packSplit(dns.MsgHdr{Id: 3, Response: true, Authoritative: true}, nil, []dns.RR{newPTR(svc, inst, ttlOther), srv, txt}, nil, badAddrRecords(host), 1472, false))
	return out
}

func TestParsePacketMatchesMiekg(t *testing.T) {
	for _, b := range seedPackets(t) {
		p, err := parsePacket(b)
		if err != nil || p.bad != 0 {
			t.Fatalf("parsePacket: %v, bad=%d", err, p.bad)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if len(p.records) != len(m.Answer)+len(m.Ns)+len(m.Extra) || len(p.questions) != len(m.Question) {
			t.Errorf("record counts differ: ours %d/%d, miekg %v", len(p.questions), len(p.records), m)
		}
	}
}

func TestParsePacketTruncated(t *testing.T) {
	b := seedPackets(t)[0]
	for n := 0; n < len(b); n++ {
		p, err := parsePacket(b[:n])
		if n < headerLen && err == nil {
			t.Errorf("%d bytes parsed", n)
		}
		if err == nil && len(p.records) > 0 && p.records[len(p.records)-1].rr == nil {
			t.Errorf("nil record at %d bytes", n)
		}
	}
}

// The packet decoder, and the browser's handling of what it decodes, must
// never panic.
func FuzzParsePacket(f *testing.F) {
	for _, b := range seedPackets(f) {
		f.Add(b)
	}
	f.Add(rawResponse(rawRR(f, "x.local.", dns.TypeA, dns.ClassINET, 1, []byte{1, 2, 3})))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePacket(b)
		if err != nil {
			return
		}
		for _, r := range p.records {
			if r.rr == nil {
				t.Fatal("nil record")
			}
			keyOf(r.rr)
		}
		// Where miekg/dns decodes the whole message (every record the
		// header announces), we must see every record too.
		declared := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
		if m := new(dns.Msg); m.Unpack(b) == nil && declared <= maxRecords && len(m.Answer)+len(m.Ns)+len(m.Extra) == declared {
			if got := len(p.records) + p.bad; got != declared {
				t.Fatalf("miekg/dns decodes %d records, we saw %d", declared, got)
			}
		}
		// An odd packet ID: received on eth0 from a link-local address;
		// even: on lo from 127.0.0.1.
		l, src := fuzzLo(), netip.MustParseAddrPort("127.0.0.1:5353")
		if b[1]&1 == 1 {
			l, src = fuzzEth(), netip.MustParseAddrPort("[fe80::2%eth0]:5353")
		}
		var evs []Event
		br := &Browser{log: (&Config{}).logger(), svcName: fuzzType + ".local.", typ: fuzzType, fn: func(ev Event) { evs = append(evs, ev) }, links: []*link{l},
			visible: map[string]Service{}, cache: map[cacheKey]*entry{}, byName: map[string]map[cacheKey]*entry{}, insts: map[string]*instance{}}
		p.response = true
		br.handle(inbound{p: p, link: l, src: src, at: time.Now()})
		// Whatever came in, a reported address can be dialled from the
		// interface it came on.
		for _, ev := range evs {
			for _, a := range ev.Service.Addrs {
				if !a.IsValid() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() ||
					a.IsLoopback() != (l.loopback() && a.IsLoopback()) ||
					a.Is6() && a.IsLinkLocalUnicast() != (a.Zone() == l.name()) || !a.IsLinkLocalUnicast() && a.Zone() != "" {
					t.Fatalf("reported address %v learned on %s", a, l.name())
				}
			}
		}
	})
}

// fuzzLo and fuzzEth are links that need no interface of the system.
func fuzzLo() *link {
	return &link{limit: 1472, ifi: net.Interface{Index: 1, Name: "lo", Flags: net.FlagLoopback | net.FlagUp}}
}

func fuzzEth() *link {
	return &link{limit: 1472, ifi: net.Interface{Index: 2, Name: "eth0", Flags: net.FlagMulticast | net.FlagUp}}
}

// badAddrRecords are address records for host that a browser must ignore
// on a non-loopback interface, between two it must use.
func badAddrRecords(host string) []dns.RR {
	return []dns.RR{
		newA(host, netip.MustParseAddr("10.0.0.1"), ttlHost),
		newAAAA(host, netip.MustParseAddr("::ffff:10.0.0.2"), ttlHost), // IPv4-mapped
		newAAAA(host, netip.MustParseAddr("::1"), ttlHost),             // loopback, from another host
		newAAAA(host, netip.MustParseAddr("ff02::fb"), ttlHost),        // multicast
		newAAAA(host, netip.MustParseAddr("::"), ttlHost),              // unspecified
		newAAAA(host, netip.MustParseAddr("fec0::1"), ttlHost),         // site-local, deprecated
		newA(host, netip.MustParseAddr("127.0.0.1"), ttlHost),          // loopback, from another host
		newAAAA(host, netip.MustParseAddr("fe80::1"), ttlHost),
		newAAAA(host, netip.MustParseAddr("2001:db8::1"), ttlHost),
	}
}

// Address records a browser cannot use are ignored, with the rest of their
// packet: the service is found with the good addresses, link-local ones
// with the interface they came on as zone. Times are given, not waited
// for.
func TestBadAddressRecordsIgnored(t *testing.T) {
	var got []Event
	l := fuzzEth()
	b := &Browser{log: (&Config{}).logger(), svcName: fuzzType + ".local.", typ: fuzzType, links: []*link{l},
		fn:      func(ev Event) { got = append(got, ev) },
		visible: map[string]Service{}, cache: map[cacheKey]*entry{}, byName: map[string]map[cacheKey]*entry{}, insts: map[string]*instance{}}
	inst := instanceName(fuzzInst, fuzzType, "local.")
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: []dns.RR{
		newPTR(fuzzType+".local.", inst, ttlOther), newSRV(inst, fuzzHost, 7000, ttlHost), newTXT(inst, nil, ttlOther),
	}, Extra: badAddrRecords(fuzzHost)}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePacket(wire)
	if err != nil || p.bad != 0 {
		t.Fatalf("parsePacket: %v, %d bad", err, p.bad)
	}
	b.queryAt = time.Now().Add(time.Hour) // no queries: the browser has no socket
	b.handle(inbound{p: p, link: l, src: netip.MustParseAddrPort("[fe80::2%eth0]:5353"), at: time.Now()})
	if len(got) != 1 || got[0].Kind != Found {
		t.Fatalf("events %v, want one Found", got)
	}
	if s := fmt.Sprint(got[0].Service.Addrs); s != "[10.0.0.1 2001:db8::1 fe80::1%eth0]" {
		t.Errorf("addresses %s, want [10.0.0.1 2001:db8::1 fe80::1%%eth0]", s)
	}
	if n := b.Stats().IgnoredAddrs; n != 6 {
		t.Errorf("Stats().IgnoredAddrs = %d, want 6", n)
	}
}

// A packet from an IPv6 link-local address of one interface that arrives on
// another is dropped whole and counted; from the right interface it is
// used.
func TestLinkLocalSourceOnWrongInterface(t *testing.T) {
	l := fuzzEth()
	var st counters
	c := &mconn{log: (&Config{}).logger(), stats: &st, links: []*link{l}, byIdx: map[int]*link{l.ifi.Index: l}}
	wire, err := (&dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Answer: []dns.RR{newTXT("x.local.", nil, 1)}}).Pack()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		zone string
		want bool
	}{{"eth9", false}, {"eth0", true}} {
		out := make(chan inbound, 1)
		done := make(chan struct{})
		reads := 0
		c.readLoop(out, done, func(b []byte) (int, int, net.IP, net.Addr, error) {
			if reads++; reads > 1 {
				return 0, 0, nil, nil, net.ErrClosed
			}
			return copy(b, wire), l.ifi.Index, net.ParseIP("ff02::fb"), &net.UDPAddr{IP: net.ParseIP("fe80::2"), Port: mdnsPort, Zone: tc.zone}, nil
		})
		select {
		case in := <-out:
			if !tc.want || in.src.Addr().Zone() != "eth0" {
				t.Errorf("from zone %s: delivered from %v", tc.zone, in.src)
			}
		default:
			if tc.want {
				t.Errorf("from zone %s: dropped", tc.zone)
			}
		}
	}
	if s := st.snapshot(); s.BadPackets != 1 || s.Packets != 1 {
		t.Errorf("stats %+v, want 1 packet and 1 bad one", s)
	}
}

// The responder's handling of any decodable packet, as a query or a
// response, from port 5353 or a legacy port, over IPv4 or IPv6, must never
// panic. This target runs a real responder on loopback, which answers on
// loopback.
func FuzzResponderHandle(f *testing.F) {
	for _, b := range seedPackets(f) {
		f.Add(b, false)
		f.Add(b, true)
	}
	r, err := NewResponder(Config{Interfaces: []string{"lo"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Register(ctx, Service{Instance: fuzzInst, Type: fuzzType, Port: 4242, Host: fuzzHost, TXT: map[string]string{"id": "abc"}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, legacy bool) {
		p, err := parsePacket(b)
		if err != nil {
			return
		}
		// An odd packet ID: from ::1, over IPv6.
		ip := netip.MustParseAddr("127.0.0.1")
		if b[1]&1 == 1 {
			ip = netip.IPv6Loopback()
		}
		src := netip.AddrPortFrom(ip, mdnsPort)
		if legacy {
			src = netip.AddrPortFrom(ip, 9) // discard port
		}
		_ = r.do(func() { r.handle(inbound{p: p, link: r.links[0], src: src, at: time.Now()}) })
	})
}
