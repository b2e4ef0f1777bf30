package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A goodbye for one address of a host removes that address only, even
// with the cache-flush bit set; the instance is Updated, not Lost. Times
// are given, not waited for.
func TestGoodbyeRemovesOnlyItsAddress(t *testing.T) {
	var got []Event
	l := &link{limit: 1472, ifi: net.Interface{Index: 1, Name: "lo", Flags: net.FlagLoopback}}
	b := &Browser{log: (&Config{}).logger(), svcName: fuzzType + ".local.", typ: fuzzType, links: []*link{l},
		fn:      func(ev Event) { got = append(got, ev) },
		visible: map[string]Service{}, cache: map[cacheKey]*entry{}, byName: map[string]map[cacheKey]*entry{}, insts: map[string]*instance{}}
	svc := fuzzType + ".local."
	inst := instanceName(fuzzInst, fuzzType, "local.")
	a1, a2 := netip.MustParseAddr("10.55.0.1"), netip.MustParseAddr("127.0.0.1")
	flushA := func(a netip.Addr, ttl uint32) dns.RR {
		return withTTL(newA(fuzzHost, a, ttlHost), ttl, true)
	}
	deliver := func(at time.Time, rrs ...dns.RR) {
		t.Helper()
		m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: rrs}
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		p, err := parsePacket(wire)
		if err != nil {
			t.Fatal(err)
		}
		b.handle(inbound{p: p, link: l, src: netip.MustParseAddrPort("127.0.0.1:5353"), at: at})
	}
	t0 := time.Now()
	b.queryAt = t0.Add(time.Hour) // no queries: the browser has no socket
	deliver(t0, newPTR(svc, inst, ttlOther), withTTL(newSRV(inst, fuzzHost, 1, ttlHost), ttlHost, true),
		withTTL(newTXT(inst, nil, ttlOther), ttlOther, true), flushA(a1, ttlHost), flushA(a2, ttlHost))
	t1 := t0.Add(10 * time.Second)
	deliver(t1, flushA(a2, 0))
	b.runDue(t1.Add(goodbyeDelay + time.Millisecond))
	if len(got) != 2 || got[0].Kind != Found || got[1].Kind != Updated {
		t.Fatalf("events %v, want Found then Updated", got)
	}
	if fmt.Sprint(got[0].Service.Addrs) != "[10.55.0.1 127.0.0.1]" || fmt.Sprint(got[1].Service.Addrs) != "[10.55.0.1]" {
		t.Errorf("addresses %v then %v, want [10.55.0.1 127.0.0.1] then [10.55.0.1]", got[0].Service.Addrs, got[1].Service.Addrs)
	}
}
