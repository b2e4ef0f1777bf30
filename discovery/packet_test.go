package discovery

import (
	"context"
	"encoding/binary"
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
	ifi := linkForFuzz()
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
		br := &Browser{log: (&Config{}).logger(), svcName: fuzzType + ".local.", typ: fuzzType, fn: func(Event) {}, links: []*link{ifi},
			visible: map[string]Service{}, cache: map[cacheKey]*entry{}, byName: map[string]map[cacheKey]*entry{}, insts: map[string]*instance{}}
		p.response = true
		br.handle(inbound{p: p, link: ifi, src: netip.MustParseAddrPort("127.0.0.1:5353"), at: time.Now()})
	})
}

func linkForFuzz() *link { return &link{limit: 1472} }

// The responder's handling of any decodable packet, as a query or a
// response, from port 5353 or a legacy port, must never panic. This target
// runs a real responder on loopback, which answers on loopback.
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
		src := netip.MustParseAddrPort("127.0.0.1:5353")
		if legacy {
			src = netip.MustParseAddrPort("127.0.0.1:9") // discard port
		}
		_ = r.do(func() { r.handle(inbound{p: p, link: r.links[0], src: src, at: time.Now()}) })
	})
}
