package discovery

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func register(t testing.TB, r *Responder, s Service) *Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reg, err := r.Register(ctx, s)
	if err != nil {
		t.Fatalf("Register(%q): %v", s.Instance, err)
	}
	return reg
}

func TestBrowseFindsResponder(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	reg := register(t, r, Service{Instance: "Alpha Node.1", Type: typ, Port: 4242, TXT: map[string]string{"id": "abc", "v": "1"}})
	ev := newEvents()
	b := mustBrowser(t, loConfig(t), typ, ev.fn)
	got := ev.wait(t, Found, "Alpha Node.1", 5*time.Second).Service
	if got.Port != 4242 || got.TXT["id"] != "abc" || got.TXT["v"] != "1" || got.Type != typ || got.Domain != "local." {
		t.Errorf("found %+v", got)
	}
	if got.Host != reg.Service().Host || got.Interface != "lo" {
		t.Errorf("host %q iface %q, want %q lo", got.Host, got.Interface, reg.Service().Host)
	}
	if !strings.HasPrefix(got.Host, "nn-") || !strings.HasSuffix(got.Host, ".local.") {
		t.Errorf("default host %q is not a random nn-<hex>.local. name", got.Host)
	}
	// A and AAAA records: every address of lo, IPv4 first.
	if want := loAddrs(t); !slices.Equal(got.Addrs, want) {
		t.Errorf("addrs %v, want %v", got.Addrs, want)
	}
	if s := b.Services(); len(s) != 1 || s[0].Instance != "Alpha Node.1" {
		t.Errorf("Services() = %+v", s)
	}
}

func TestTXTUpdate(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	reg := register(t, r, Service{Instance: "Upd", Type: typ, Port: 1000, TXT: map[string]string{"v": "1"}})
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	ev.wait(t, Found, "Upd", 5*time.Second)
	if err := reg.SetTXT(map[string]string{"v": "2", "new": "yes"}); err != nil {
		t.Fatal(err)
	}
	got := ev.wait(t, Updated, "Upd", 5*time.Second).Service
	if got.TXT["v"] != "2" || got.TXT["new"] != "yes" || len(got.TXT) != 2 {
		t.Errorf("updated TXT %v", got.TXT)
	}
	if reg.Service().TXT["v"] != "2" {
		t.Errorf("Registration.Service().TXT = %v", reg.Service().TXT)
	}
	if err := reg.SetTXT(map[string]string{"bad=key": "x"}); err == nil {
		t.Error("SetTXT accepted a key with '='")
	}
}

func TestGoodbyeGivesLost(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	reg := register(t, r, Service{Instance: "Bye", Type: typ, Port: 1000})
	reg2 := register(t, r, Service{Instance: "Bye2", Type: typ, Port: 1001})
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	ev.wait(t, Found, "Bye", 5*time.Second)
	ev.wait(t, Found, "Bye2", 5*time.Second)
	start := time.Now()
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	lost := ev.wait(t, Lost, "Bye", 5*time.Second)
	t.Logf("Lost %v after Registration.Close", time.Since(start))
	if lost.Service.Port != 1000 {
		t.Errorf("Lost carries %+v", lost.Service)
	}
	if err := reg.SetTXT(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetTXT after Close: %v, want ErrClosed", err)
	}
	// Closing the responder says goodbye for the rest.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, Lost, "Bye2", 5*time.Second)
	if err := reg2.Close(); err != nil {
		t.Errorf("Registration.Close after Responder.Close: %v", err)
	}
}

func TestConflictRenamesInstance(t *testing.T) {
	typ := testType(t)
	r1 := mustResponder(t, loConfig(t))
	r2 := mustResponder(t, loConfig(t))
	register(t, r1, Service{Instance: "Dup", Type: typ, Port: 1})
	reg2 := register(t, r2, Service{Instance: "Dup", Type: typ, Port: 2})
	if got := reg2.Service().Instance; got != "Dup (2)" {
		t.Fatalf("second registration is %q, want %q", got, "Dup (2)")
	}
	// The same name twice on one responder is renamed without probing
	// the network.
	reg3 := register(t, r1, Service{Instance: "Dup", Type: typ, Port: 3})
	if got := reg3.Service().Instance; got == "Dup" {
		t.Fatalf("third registration kept the name %q", got)
	}
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	if s := ev.wait(t, Found, "Dup", 5*time.Second).Service; s.Port != 1 {
		t.Errorf("Dup has port %d, want 1", s.Port)
	}
	if s := ev.wait(t, Found, "Dup (2)", 5*time.Second).Service; s.Port != 2 {
		t.Errorf("Dup (2) has port %d, want 2", s.Port)
	}
}

// A raw peer that claims our host name with another address makes the
// responder rename its host.
func TestConflictRenamesHost(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	peer := newRawClient(t, mdnsPort)
	claim := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	claim.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "clash.local.", Rrtype: dns.TypeA, Class: dns.ClassINET | classCacheFlush, Ttl: 120}, A: []byte{10, 9, 8, 7}}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 60; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				peer.send(t, claim)
			}
		}
	}()
	reg := register(t, r, Service{Instance: "HostClash", Type: typ, Port: 7, Host: "clash"})
	close(stop)
	wg.Wait()
	if got := reg.Service().Host; got != "clash-2.local." {
		t.Fatalf("host is %q, want clash-2.local.", got)
	}
	ev := newEvents()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	if s := ev.wait(t, Found, "HostClash", 5*time.Second).Service; s.Host != "clash-2.local." {
		t.Errorf("browser sees host %q", s.Host)
	}
}

// A peer that claims an established name with other data makes the
// responder probe again and rename (RFC 6762 §9).
func TestLateConflictRenames(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	reg := register(t, r, Service{Instance: "Late", Type: typ, Port: 7})
	inst := instanceName("Late", typ, "local.")
	peer := newRawClient(t, mdnsPort)
	claim := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	claim.Answer = []dns.RR{withTTL(newSRV(inst, "intruder.local.", 8, ttlHost), ttlHost, true)}
	deadline := time.Now().Add(5 * time.Second)
	for reg.Service().Instance == "Late" && time.Now().Before(deadline) {
		peer.send(t, claim)
		time.Sleep(100 * time.Millisecond)
	}
	if got := reg.Service().Instance; got != "Late (2)" {
		t.Fatalf("after a late conflict the registration is %q, want %q", got, "Late (2)")
	}
}

// A malformed record in the middle of a packet costs that record only.
func TestMalformedRecordInMiddle(t *testing.T) {
	typ := testType(t)
	ev := newEvents()
	b := mustBrowser(t, loConfig(t), typ, ev.fn)
	peer := newRawClient(t, mdnsPort)
	svc := typ + ".local."
	inst := "Crafted." + svc
	host := "crafted-host.local."
	pkt := rawResponse(
		wireRR(t, newPTR(svc, inst, 4500)),
		// An SRV whose RDATA is two bytes: too short for SRV.
		rawRR(t, "Other."+svc, dns.TypeSRV, dns.ClassINET, 120, []byte{0, 1}),
		// A TXT whose string length runs past its RDATA.
		rawRR(t, "Other2."+svc, dns.TypeTXT, dns.ClassINET, 4500, []byte{9, 'a', 'b'}),
		wireRR(t, newTXT(inst, []string{"k=v"}, 4500)),
		wireRR(t, newSRV(inst, host, 5555, 120)),
		// An A record with three bytes of address.
		rawRR(t, host, dns.TypeA, dns.ClassINET, 120, []byte{127, 0, 0}),
		wireRR(t, newA(host, netip.MustParseAddr("127.0.0.42"), 120)),
	)
	if new(dns.Msg).Unpack(pkt) == nil {
		t.Fatal("miekg/dns accepted the crafted packet whole; it is not malformed enough to test anything")
	}
	peer.sendBytes(t, pkt)
	got := ev.wait(t, Found, "Crafted", 5*time.Second).Service
	if got.Port != 5555 || got.TXT["k"] != "v" || len(got.Addrs) != 1 || got.Addrs[0] != netip.MustParseAddr("127.0.0.42") {
		t.Errorf("found %+v", got)
	}
	if st := b.Stats(); st.BadRecords < 3 {
		t.Errorf("Stats().BadRecords = %d, want >= 3", st.BadRecords)
	}
}

func TestLegacyUnicastQuery(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	reg := register(t, r, Service{Instance: "Legacy", Type: typ, Port: 9, TXT: map[string]string{"a": "b"}})
	q := newRawClient(t, 0)
	m := new(dns.Msg)
	m.Id = 0xbeef
	m.Question = []dns.Question{{Name: typ + ".local.", Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	q.send(t, m)
	resp, ok := q.recv(t, 3*time.Second, func(rm rawMsg) bool { return rm.m.Response })
	if !ok {
		t.Fatal("no unicast answer to a legacy query")
	}
	if resp.mcast {
		t.Error("legacy answer was multicast")
	}
	if resp.src.Port() != mdnsPort {
		t.Errorf("answer from port %d", resp.src.Port())
	}
	if resp.m.Id != 0xbeef {
		t.Errorf("answer ID %#x, want 0xbeef", resp.m.Id)
	}
	if len(resp.m.Question) != 1 || !equalFold(resp.m.Question[0].Name, typ+".local.") {
		t.Errorf("question not repeated: %v", resp.m.Question)
	}
	inst := instanceName(reg.Service().Instance, typ, "local.")
	if !hasRR(resp.m, typ+".local.", dns.TypePTR) || !hasRR(resp.m, inst, dns.TypeSRV) || !hasRR(resp.m, inst, dns.TypeTXT) {
		t.Errorf("answer lacks PTR/SRV/TXT:\n%v", resp.m)
	}
	for _, rr := range append(append([]dns.RR{}, resp.m.Answer...), resp.m.Extra...) {
		if rr.Header().Ttl > 10 {
			t.Errorf("legacy TTL %d > 10: %v", rr.Header().Ttl, rr)
		}
		if rr.Header().Class != dns.ClassINET {
			t.Errorf("cache-flush bit in a legacy answer: %v", rr)
		}
	}

	// Service type enumeration (RFC 6763 §9) and a negative answer (NSEC)
	// for a type the host does not have, listing the address types it has.
	ask := func(name string, qt uint16) *dns.Msg {
		m := new(dns.Msg)
		m.Id = dns.Id()
		m.Question = []dns.Question{{Name: name, Qtype: qt, Qclass: dns.ClassINET}}
		q.send(t, m)
		resp, ok := q.recv(t, 3*time.Second, func(rm rawMsg) bool { return rm.m.Response && rm.m.Id == m.Id })
		if !ok {
			t.Fatalf("no answer for %s %s", name, dns.TypeToString[qt])
		}
		return resp.m
	}
	enum := ask("_services._dns-sd._udp.local.", dns.TypePTR)
	if len(enum.Answer) != 1 || !equalFold(enum.Answer[0].(*dns.PTR).Ptr, typ+".local.") {
		t.Errorf("enumeration answer: %v", enum.Answer)
	}
	neg := ask(reg.Service().Host, dns.TypeTXT)
	want := []uint16{dns.TypeA}
	if slices.ContainsFunc(loAddrs(t), netip.Addr.Is6) {
		want = append(want, dns.TypeAAAA)
	}
	if len(neg.Answer) != 1 || neg.Answer[0].Header().Rrtype != dns.TypeNSEC {
		t.Errorf("TXT query for the host answered with %v, want an NSEC", neg.Answer)
	} else if bm := neg.Answer[0].(*dns.NSEC).TypeBitMap; !slices.Equal(bm, want) {
		t.Errorf("NSEC type bitmap %v, want %v", bm, want)
	}
	// The AAAA question is answered with lo's IPv6 address, and the A
	// record comes along as an additional record (RFC 6762 §6.2).
	if slices.ContainsFunc(loAddrs(t), netip.Addr.Is6) {
		six := ask(reg.Service().Host, dns.TypeAAAA)
		if len(six.Answer) != 1 || six.Answer[0].(*dns.AAAA).AAAA.String() != "::1" || !hasRR(six, reg.Service().Host, dns.TypeA) {
			t.Errorf("AAAA query answered with %v, additional %v", six.Answer, six.Extra)
		}
	}
}

func TestKnownAnswerSuppression(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	reg := register(t, r, Service{Instance: "Known", Type: typ, Port: 9})
	svc := typ + ".local."
	inst := instanceName(reg.Service().Instance, typ, "local.")
	q := newRawClient(t, mdnsPort)
	// Let the announcements and the one-second rate limit pass, so only
	// known-answer suppression can keep the responder quiet.
	time.Sleep(announceInterval + rateLimit + 200*time.Millisecond)
	query := func(ttl uint32) {
		q.drain(t)
		m := new(dns.Msg)
		m.Question = []dns.Question{{Name: svc, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
		if ttl > 0 {
			m.Answer = []dns.RR{newPTR(svc, inst, ttl)}
		}
		q.send(t, m)
	}
	answered := func() bool {
		_, ok := q.recv(t, 600*time.Millisecond, func(rm rawMsg) bool {
			return rm.m.Response && hasRR(rm.m, svc, dns.TypePTR)
		})
		return ok
	}
	query(ttlOther) // the querier knows the answer with its full TTL
	if answered() {
		t.Fatal("responder answered although the query listed the answer as known")
	}
	query(ttlOther/2 - 1) // known, but with less than half the TTL left
	if !answered() {
		t.Fatal("no answer when the known answer had less than half its TTL left")
	}
}

// A truncated query (TC) waits for the rest of its known answers
// (RFC 6762 §7.2), and answers due at about the same time go out in one
// packet (aggregation).
func TestTruncatedQueryAndAggregation(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	reg := register(t, r, Service{Instance: "Trunc", Type: typ, Port: 9})
	svc := typ + ".local."
	inst := instanceName(reg.Service().Instance, typ, "local.")
	q := newRawClient(t, mdnsPort)
	time.Sleep(announceInterval + rateLimit + 200*time.Millisecond)

	// A TC query for the PTR, then its continuation listing the PTR as
	// known: no answer.
	q.drain(t)
	m := new(dns.Msg)
	m.Truncated = true
	m.Question = []dns.Question{{Name: svc, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	q.send(t, m)
	cont := new(dns.Msg)
	cont.Answer = []dns.RR{newPTR(svc, inst, ttlOther)}
	q.send(t, cont)
	if _, ok := q.recv(t, 700*time.Millisecond, func(rm rawMsg) bool { return rm.m.Response && hasRR(rm.m, svc, dns.TypePTR) }); ok {
		t.Fatal("answered a truncated query whose continuation listed the answer")
	}

	// A TC query for the PTR (held 400-500 ms) and then a query for the
	// TXT (unique, due at once): one packet carries both.
	q.drain(t)
	q.send(t, m)
	txtQ := new(dns.Msg)
	txtQ.Question = []dns.Question{{Name: inst, Qtype: dns.TypeTXT, Qclass: dns.ClassINET}}
	q.send(t, txtQ)
	resp, ok := q.recv(t, time.Second, func(rm rawMsg) bool { return rm.m.Response && hasRR(rm.m, inst, dns.TypeTXT) })
	if !ok {
		t.Fatal("no answer to the TXT query")
	}
	if !hasRR(resp.m, svc, dns.TypePTR) {
		t.Errorf("the pending PTR answer was not sent with the TXT answer:\n%v", resp.m)
	}
}

func TestSeveralRespondersAndBrowsers(t *testing.T) {
	typ := testType(t)
	var regs sync.WaitGroup
	for i, name := range []string{"One", "Two", "Three"} {
		r := mustResponder(t, loConfig(t))
		regs.Add(1)
		go func() {
			defer regs.Done()
			register(t, r, Service{Instance: name, Type: typ, Port: 100 + i})
		}()
	}
	regs.Wait()
	for i := 0; i < 2; i++ {
		ev := newEvents()
		mustBrowser(t, loConfig(t), typ, ev.fn)
		for j, name := range []string{"One", "Two", "Three"} {
			if s := ev.wait(t, Found, name, 5*time.Second).Service; s.Port != 100+j {
				t.Errorf("browser %d: %s port %d", i, name, s.Port)
			}
		}
	}
}

// Many services make an answer bigger than a packet: it is split, every
// packet stays under the limit, and everything arrives.
func TestLargeAnswerIsSplit(t *testing.T) {
	typ := testType(t)
	r := mustResponder(t, loConfig(t))
	const n = 24
	big := strings.Repeat("x", 240)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txt := map[string]string{"a": big, "b": big, "c": big, "d": big}
			register(t, r, Service{Instance: "Big " + string(rune('A'+i)), Type: typ, Port: 2000 + i, TXT: txt})
		}()
	}
	wg.Wait()
	q := newRawClient(t, mdnsPort)
	time.Sleep(announceInterval + rateLimit + 200*time.Millisecond)
	svc := typ + ".local."
	m := new(dns.Msg)
	m.Question = []dns.Question{{Name: svc, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	q.drain(t)
	q.send(t, m)
	ptrs, txts, packets := map[string]bool{}, map[string]bool{}, 0
	q.recv(t, 1500*time.Millisecond, func(rm rawMsg) bool {
		if !rm.m.Response {
			return false
		}
		packets++
		if rm.size > q.l.limit {
			t.Errorf("packet of %d bytes, limit %d", rm.size, q.l.limit)
		}
		for _, rr := range append(append([]dns.RR{}, rm.m.Answer...), rm.m.Extra...) {
			switch v := rr.(type) {
			case *dns.PTR:
				if equalFold(v.Hdr.Name, svc) {
					ptrs[v.Ptr] = true
				}
			case *dns.TXT:
				// Only this test's instances: other test binaries may
				// answer on the loopback group at the same time.
				if strings.HasSuffix(strings.ToLower(v.Hdr.Name), "."+strings.ToLower(svc)) {
					txts[v.Hdr.Name] = true
				}
			}
		}
		return false
	})
	if len(ptrs) != n || len(txts) != n {
		t.Errorf("got %d PTR and %d TXT records in %d packets, want %d each", len(ptrs), len(txts), packets, n)
	}
	if packets < 2 {
		t.Errorf("answer came in %d packet(s); expected a split", packets)
	}
	ev := newEvents()
	b := mustBrowser(t, loConfig(t), typ, ev.fn)
	for i := 0; i < n; i++ {
		ev.wait(t, Found, "Big "+string(rune('A'+i)), 10*time.Second)
	}
	if got := len(b.Services()); got != n {
		t.Errorf("browser has %d services", got)
	}
}

// A service from a peer that stops answering: the browser re-queries
// before the TTL runs out, backs off its PTR queries, and reports Lost at
// expiry.
func TestBrowserRefreshAndExpiry(t *testing.T) {
	typ := testType(t)
	svc := typ + ".local."
	inst := "Fading." + svc
	host := "fading.local."
	ev := newEvents()
	peer := newRawClient(t, mdnsPort)
	start := time.Now()
	mustBrowser(t, loConfig(t), typ, ev.fn)
	const ttl = 3
	resp := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	resp.Answer = []dns.RR{newPTR(svc, inst, ttl)}
	resp.Extra = []dns.RR{withTTL(newSRV(inst, host, 1, ttl), ttl, true), withTTL(newTXT(inst, nil, ttl), ttl, true), withTTL(newA(host, netip.MustParseAddr("127.0.0.9"), ttl), ttl, true)}
	peer.send(t, resp)
	sent := time.Now()
	ev.wait(t, Found, "Fading", 3*time.Second)

	var ptrQueries []time.Duration
	refreshed := map[uint16]time.Duration{}
	peer.recv(t, ttl*time.Second+500*time.Millisecond, func(rm rawMsg) bool {
		if rm.m.Response {
			return false
		}
		for _, q := range rm.m.Question {
			switch {
			case equalFold(q.Name, svc) && q.Qtype == dns.TypePTR:
				ptrQueries = append(ptrQueries, time.Since(start))
			case equalFold(q.Name, inst) || equalFold(q.Name, host):
				if _, ok := refreshed[q.Qtype]; !ok {
					refreshed[q.Qtype] = time.Since(sent)
				}
			}
		}
		return false
	})
	for _, typ := range []uint16{dns.TypeSRV, dns.TypeTXT, dns.TypeA} {
		at, ok := refreshed[typ]
		if !ok {
			t.Errorf("no refresh query for %s", dns.TypeToString[typ])
			continue
		}
		if at < ttl*time.Second*7/10 || at > ttl*time.Second {
			t.Errorf("refresh query for %s at %v, want 80-95%% of %ds", dns.TypeToString[typ], at, ttl)
		}
	}
	if len(ptrQueries) < 2 {
		t.Errorf("PTR queries at %v, want at least two in %ds", ptrQueries, ttl)
	} else if len(ptrQueries) >= 3 && ptrQueries[2]-ptrQueries[1] < (ptrQueries[1]-ptrQueries[0])*3/2 {
		t.Errorf("PTR queries at %v do not back off", ptrQueries)
	}
	ev.wait(t, Lost, "Fading", 3*time.Second)
}

func TestValidationErrorsNameTheField(t *testing.T) {
	r := mustResponder(t, loConfig(t))
	ctx := context.Background()
	ok := Service{Instance: "X", Type: "_nearnet._tcp", Port: 1}
	cases := []struct {
		mut   func(*Service)
		field string
	}{
		{func(s *Service) { s.Type = "_toolongservicename._tcp" }, "Service.Type"},
		{func(s *Service) { s.Type = "_nearnet._sctp" }, "Service.Type"},
		{func(s *Service) { s.Instance = "" }, "Service.Instance"},
		{func(s *Service) { s.Instance = strings.Repeat("é", 32) }, "Service.Instance"},
		{func(s *Service) { s.Instance = "tab\there" }, "Service.Instance"},
		{func(s *Service) { s.Port = 0 }, "Service.Port"},
		{func(s *Service) { s.Port = 70000 }, "Service.Port"},
		{func(s *Service) { s.Domain = "example.com." }, "Service.Domain"},
		{func(s *Service) { s.Host = "bad_host" }, "Service.Host"},
	}
	for _, c := range cases {
		s := ok
		c.mut(&s)
		_, err := r.Register(ctx, s)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Register(%+v) = %v, want a FieldError for %s", s, err, c.field)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("error %q does not name %s", err, c.field)
		}
	}
	_, err := r.Register(ctx, Service{Instance: "X", Type: "_nearnet._tcp", Port: 1, TXT: map[string]string{"": "v"}})
	var te *TXTError
	if !errors.As(err, &te) {
		t.Errorf("empty TXT key: %v", err)
	}
	_, err = NewResponder(Config{Interfaces: []string{"nosuch0"}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Config.Interfaces" || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("unknown interface: %v", err)
	}
	_, err = NewBrowser(Config{Interfaces: []string{"lo"}}, "nearnet._tcp", nil)
	if !errors.As(err, &fe) || fe.Field != "Service.Type" {
		t.Errorf("bad browse type: %v", err)
	}
}

func TestBrowseReturnsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Browse(ctx, loConfig(t), testType(t), nil) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Browse returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Browse did not return after cancel")
	}
}

func TestRegisterCancelled(t *testing.T) {
	r := mustResponder(t, loConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.Register(ctx, Service{Instance: "Slow", Type: testType(t), Port: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Register = %v, want DeadlineExceeded", err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if _, err := r.Register(context.Background(), Service{Instance: "Late", Type: testType(t), Port: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Register after Close = %v, want ErrClosed", err)
	}
}

// loAddrs returns the addresses of lo (127.0.0.1 and, unless IPv6 is off,
// ::1), IPv4 first: what a responder on lo announces.
func loAddrs(t testing.TB) []netip.Addr {
	t.Helper()
	ls, err := resolveLinks(hostNet{}, []string{"lo"})
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, p := range ls[0].addrs() {
		out = append(out, p.Addr())
	}
	return out
}
