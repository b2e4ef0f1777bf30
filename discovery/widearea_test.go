package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/unicastdns"
	"github.com/nearnet/nearnet/internal/unicastdns/dnstest"
)

// One named (BIND9) on loopback serves every wide-area test of the package.
var (
	namedOnce sync.Once
	named     *dnstest.Server
	namedErr  string
	namedDir  string
)

func needNamed(t *testing.T) *dnstest.Server {
	t.Helper()
	namedOnce.Do(func() {
		if os.Geteuid() != 0 {
			namedErr = fmt.Sprintf("root to run named: running as uid %d", os.Geteuid())
			return
		}
		if _, err := exec.LookPath("named"); err != nil {
			namedErr = "named (Debian package bind9) in $PATH"
			return
		}
		dir, err := os.MkdirTemp("", "nearnet-named-")
		if err != nil {
			namedErr = err.Error()
			return
		}
		namedDir = dir
		s, err := dnstest.Write(dnstest.Options{Dir: dir, Zone: "wide.test"})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err = s.Run(ctx)
			cancel()
		}
		if err != nil {
			namedErr = "a running named: " + err.Error()
			return
		}
		named = s
	})
	netns.Require(t, namedErr, named != nil)
	return named
}

func stopNamed() {
	if named != nil {
		named.Close()
	}
	if namedDir != "" {
		os.RemoveAll(namedDir)
	}
}

func wideConfig(s *dnstest.Server) WideAreaConfig {
	return WideAreaConfig{Domain: s.Zone, Server: s.Addr.String(), Key: tsigKeyOf(s.Key), Refresh: time.Second, Interfaces: []string{"lo"}}
}

func browseWide(t *testing.T, cfg WideAreaConfig, typ string) *events {
	t.Helper()
	ev := newEvents()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- BrowseWideArea(ctx, cfg, typ, ev.fn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("BrowseWideArea ended with %v", err)
		}
	})
	return ev
}

func mustRegisterWide(t *testing.T, cfg WideAreaConfig, svcs ...Service) *WideAreaRegistration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := RegisterWideArea(ctx, cfg, svcs...)
	if err != nil {
		t.Fatalf("RegisterWideArea: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestWideAreaRegisterBrowse registers an instance under two types in
// BIND9 with TSIG-signed updates, finds it by browsing with unicast
// queries (resolved: port, TXT, the loopback addresses), and loses it
// when the registration is closed and its records removed.
func TestWideAreaRegisterBrowse(t *testing.T) {
	t.Parallel() // not TestWideAreaClaimRace, whose hook would catch the others
	s := needNamed(t)
	cfg := wideConfig(s)
	typ := testType(t)
	udp := typ[:len(typ)-5] + "._udp"
	ev := browseWide(t, cfg, typ)
	r := mustRegisterWide(t, cfg,
		Service{Instance: "Wide One", Type: typ, Port: 4242, TXT: map[string]string{"id": "abc", "v": "1"}},
		Service{Instance: "Wide One", Type: udp, Port: 4242, TXT: map[string]string{"id": "abc", "v": "1"}})
	got := ev.wait(t, Found, "Wide One", 20*time.Second).Service
	if got.Port != 4242 || got.TXT["id"] != "abc" || got.Domain != "wide.test." || got.Type != typ {
		t.Fatalf("found %+v", got)
	}
	if !containsAddr(got.Addrs, netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("addrs %v, want 127.0.0.1 (lo's address)", got.Addrs)
	}
	if h := r.Services()[0].Host; got.Host != h {
		t.Fatalf("host %q, want the registration's %q", got.Host, h)
	}
	// The other type is registered too, and the domain lists both types.
	c, _ := unicastdns.New(unicastdns.Config{Server: s.Addr.String()})
	ptrs, err := c.Query(context.Background(), udp+"."+s.Zone, dns.TypePTR)
	if err != nil || len(ptrs) != 1 {
		t.Fatalf("PTR of %s: %v, %v", udp, ptrs, err)
	}
	enum, _ := c.Query(context.Background(), "_services._dns-sd._udp."+s.Zone, dns.TypePTR)
	if len(enum) < 2 {
		t.Fatalf("service enumeration lists %v, want both types", enum)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	lost := ev.wait(t, Lost, "Wide One", 20*time.Second)
	if lost.Service.Port != 4242 {
		t.Fatalf("lost %+v", lost.Service)
	}
	// Nothing of it is left in the zone.
	for _, q := range []struct {
		name string
		t    uint16
	}{{typ + "." + s.Zone, dns.TypePTR}, {udp + "." + s.Zone, dns.TypePTR}, {got.Host, dns.TypeA}, {got.Host, dns.TypeTXT}} {
		if rrs, err := c.Query(context.Background(), q.name, q.t); err != nil || len(rrs) != 0 {
			t.Errorf("after Close, %s %s = %v, %v; want nothing", q.name, dns.TypeToString[q.t], rrs, err)
		}
	}
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// TestWideAreaLease: a registration whose refreshes stop (a crash) is lost
// to browsers when its lease (3 refreshes) ends, though its records are
// still in the zone; the next live registrant's refresh then deletes them.
// Refreshes renew the lease meanwhile.
func TestWideAreaLease(t *testing.T) {
	t.Parallel() // not TestWideAreaClaimRace, whose hook would catch the others
	s := needNamed(t)
	cfg := wideConfig(s)
	typ := testType(t)
	ev := browseWide(t, cfg, typ)
	dead := mustRegisterWide(t, cfg, Service{Instance: "Crasher", Type: typ, Port: 1001})
	ev.wait(t, Found, "Crasher", 20*time.Second)
	host := dead.Services()[0].Host
	c, _ := unicastdns.New(unicastdns.Config{Server: s.Addr.String()})
	lease := func() int64 {
		t.Helper()
		rrs, err := c.Query(context.Background(), host, dns.TypeTXT)
		if err != nil || len(rrs) == 0 {
			t.Fatalf("lease of %s: %v, %v", host, rrs, err)
		}
		end, ok := parseLease(rrs[0].(*dns.TXT).Txt)
		if !ok {
			t.Fatalf("no lease in %v", rrs)
		}
		return end.Unix()
	}
	// Refreshed: the lease moves forward (the refresh interval is 1 s).
	first := lease()
	deadline := time.Now().Add(20 * time.Second)
	for lease() <= first {
		if time.Now().After(deadline) {
			t.Fatalf("lease still %d after 20 s of 1 s refreshes", first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	dead.abandon()
	ev.wait(t, Lost, "Crasher", 30*time.Second)
	// Still in the zone: nobody removed it.
	if rrs, _ := c.Query(context.Background(), instanceName("Crasher", typ, s.Zone+"."), dns.TypeSRV); len(rrs) != 1 {
		t.Fatalf("the abandoned SRV record is gone before any sweep: %v", rrs)
	}
	// A live registrant of the type sweeps it away.
	mustRegisterWide(t, cfg, Service{Instance: "Sweeper", Type: typ, Port: 1002})
	deadline = time.Now().Add(30 * time.Second)
	for {
		rrs, _ := c.Query(context.Background(), instanceName("Crasher", typ, s.Zone+"."), dns.TypeSRV)
		hostRRs, _ := c.Query(context.Background(), host, dns.TypeA)
		if len(rrs) == 0 && len(hostRRs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired instance is still in the zone after 30 s: %v %v", rrs, hostRRs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ev.wait(t, Found, "Sweeper", 20*time.Second)
}

// TestWideAreaBadKey: a key the server rejects fails RegisterWideArea at
// once with a permanent DNSError matching ErrTSIGKey, whose text shows no
// secret, and registers nothing.
func TestWideAreaBadKey(t *testing.T) {
	s := needNamed(t)
	for _, key := range []TSIGKey{
		{Name: s.Key.Name, Algorithm: "hmac-sha256", Secret: []byte("0123456789abcdef0123456789abcdef")},
		{Name: "unknown-key", Secret: s.Key.Secret},
	} {
		cfg := wideConfig(s)
		cfg.Key = key
		typ := testType(t)
		r, err := RegisterWideArea(context.Background(), cfg, Service{Instance: "Bad Key", Type: typ, Port: 1})
		if r != nil {
			r.Close()
		}
		var de *DNSError
		if !errors.Is(err, ErrTSIGKey) || !errors.As(err, &de) || !de.Permanent || de.Op != "update" {
			t.Fatalf("RegisterWideArea with key %v = %v, want a permanent DNSError matching ErrTSIGKey", key, err)
		}
		if strconv.Quote(err.Error()) == "" || containsSecret(err.Error(), key.Secret) {
			t.Fatalf("error shows the secret: %v", err)
		}
		c, _ := unicastdns.New(unicastdns.Config{Server: s.Addr.String()})
		if rrs, _ := c.Query(context.Background(), typ+"."+s.Zone, dns.TypePTR); len(rrs) != 0 {
			t.Fatalf("a rejected registration left %v", rrs)
		}
	}
}

func containsSecret(msg string, secret []byte) bool {
	return len(secret) > 0 && (contains(msg, string(secret)) || contains(msg, fmt.Sprintf("%x", secret)))
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestWideAreaRename: an instance name held by another live registration
// is renamed, as on the link.
func TestWideAreaRename(t *testing.T) {
	t.Parallel() // not TestWideAreaClaimRace, whose hook would catch the others
	s := needNamed(t)
	cfg := wideConfig(s)
	typ := testType(t)
	ev := browseWide(t, cfg, typ)
	mustRegisterWide(t, cfg, Service{Instance: "Twin", Type: typ, Port: 2001})
	r2 := mustRegisterWide(t, cfg, Service{Instance: "Twin", Type: typ, Port: 2002})
	if got := r2.Services()[0].Instance; got != "Twin (2)" {
		t.Fatalf("second registration named %q, want \"Twin (2)\"", got)
	}
	a := ev.wait(t, Found, "Twin", 20*time.Second)
	b := ev.wait(t, Found, "Twin (2)", 20*time.Second)
	if a.Service.Port != 2001 || b.Service.Port != 2002 {
		t.Fatalf("ports %d, %d", a.Service.Port, b.Service.Port)
	}
}

// TestWideAreaServerDown: browsing a server that does not answer reports
// nothing lost and keeps polling (transient); a browse of a refused zone
// ends with a permanent error.
func TestWideAreaRefusedBrowse(t *testing.T) {
	s := needNamed(t)
	cfg := wideConfig(s)
	cfg.Domain = "not-served.test"
	err := BrowseWideArea(context.Background(), cfg, testType(t), func(Event) {})
	var de *DNSError
	if !errors.As(err, &de) || !de.Permanent || de.Rcode != dns.RcodeRefused {
		t.Fatalf("browse of a zone the server does not serve = %v, want a permanent REFUSED", err)
	}
}

func TestWideAreaConfig(t *testing.T) {
	for _, cfg := range []WideAreaConfig{
		{},
		{Domain: "example.test"},
		{Server: "127.0.0.1:53"},
		{Domain: "local.", Server: "127.0.0.1:53"},
		{Domain: "bad..name", Server: "127.0.0.1:53"},
		{Domain: "example.test", Server: "127.0.0.1:53", Refresh: time.Millisecond},
		{Domain: "example.test", Server: "127.0.0.1:53", Key: TSIGKey{Name: "k", Algorithm: "md5", Secret: []byte("x")}},
	} {
		var fe *FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) {
			t.Errorf("Validate(%+v) = %v, want a FieldError", cfg, err)
		}
	}
	if err := (WideAreaConfig{Domain: "example.test", Server: "10.0.0.53"}).Validate(); err != nil {
		t.Fatalf("a valid config: %v", err)
	}
	k, err := ParseTSIGKey("k:hmac-sha256:c2VjcmV0")
	if err != nil || k.Name != "k" || string(k.Secret) != "secret" || contains(k.String(), "secret") {
		t.Fatalf("ParseTSIGKey = %+v (%s), %v", k, k, err)
	}
}

func FuzzParseLease(f *testing.F) {
	f.Add("nearnet-lease=1700000000")
	f.Add("nearnet-lease=-1")
	f.Add("nearnet-lease")
	f.Add("other=1")
	f.Fuzz(func(t *testing.T, s string) {
		end, ok := parseLease([]string{s})
		if ok && (end.Unix() < 0 || end.Unix() > 1<<40) {
			t.Fatalf("lease %v accepted", end)
		}
	})
}

// TestWideAreaClaimRace: another host registers the name between our check
// and our first update; the update's prerequisite fails, and we check again
// and take "name (2)" rather than overwrite it.
func TestWideAreaClaimRace(t *testing.T) {
	s := needNamed(t)
	cfg := wideConfig(s)
	typ := testType(t)
	var rival *WideAreaRegistration
	testHookAfterClaim = func() {
		testHookAfterClaim = nil
		rival = mustRegisterWide(t, cfg, Service{Instance: "Racer", Type: typ, Port: 3001})
	}
	defer func() { testHookAfterClaim = nil }()
	r := mustRegisterWide(t, cfg, Service{Instance: "Racer", Type: typ, Port: 3002})
	if rival == nil {
		t.Fatal("the hook did not run")
	}
	if a, b := rival.Services()[0].Instance, r.Services()[0].Instance; a != "Racer" || b != "Racer (2)" {
		t.Fatalf("names %q and %q, want \"Racer\" and \"Racer (2)\"", a, b)
	}
	c, _ := unicastdns.New(unicastdns.Config{Server: s.Addr.String()})
	rrs, _ := c.Query(context.Background(), instanceName("Racer", typ, s.Zone+"."), dns.TypeSRV)
	if len(rrs) != 1 || rrs[0].(*dns.SRV).Port != 3001 {
		t.Fatalf("SRV of Racer = %v, want the rival's alone", rrs)
	}
}

// TestWideAreaServerComesBack: a registration made while the DNS server is
// down gets a transient error and a registration that keeps trying; when
// named starts, the next refresh registers it (OnRefresh(nil)) and a
// browser finds it; when named stops, OnRefresh reports the failure.
func TestWideAreaServerComesBack(t *testing.T) {
	t.Parallel() // not TestWideAreaClaimRace, whose hook would catch the others
	needNamed(t) // root and named are here
	srv, err := dnstest.Write(dnstest.Options{Dir: t.TempDir(), Zone: "back.test"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := WideAreaConfig{Domain: srv.Zone, Server: srv.Addr.String(), Key: tsigKeyOf(srv.Key), Refresh: time.Second, Interfaces: []string{"lo"}}
	refreshes := make(chan error, 16)
	cfg.OnRefresh = func(err error) { refreshes <- err }
	typ := testType(t)
	r, err := RegisterWideArea(context.Background(), cfg, Service{Instance: "Patient", Type: typ, Port: 4001})
	var de *DNSError
	if r == nil || !errors.As(err, &de) || de.Permanent {
		t.Fatalf("RegisterWideArea with the server down = %v, %v; want a registration and a transient DNSError", r, err)
	}
	defer r.Close()
	if r.Err() == nil {
		t.Fatal("Err() is nil after a failed update")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refreshes:
		if err != nil {
			t.Fatalf("OnRefresh(%v), want nil once the server is up", err)
		}
	case <-ctx.Done():
		t.Fatal("no OnRefresh(nil) after named started")
	}
	if r.Err() != nil {
		t.Fatalf("Err() = %v after a successful refresh", r.Err())
	}
	ev := browseWide(t, cfg, typ)
	ev.wait(t, Found, "Patient", 20*time.Second)
	srv.Close()
	select {
	case err := <-refreshes:
		if err == nil || isPermanent(err) {
			t.Fatalf("OnRefresh(%v) after named stopped, want a transient error", err)
		}
	case <-ctx.Done():
		t.Fatal("no OnRefresh(err) after named stopped")
	}
}

// TestWideAreaTakeOverExpired: a name whose holder's lease has ended is
// taken as it is (no rename), and the old holder's host records go with it.
func TestWideAreaTakeOverExpired(t *testing.T) {
	t.Parallel() // not TestWideAreaClaimRace, whose hook would catch the others
	s := needNamed(t)
	cfg := wideConfig(s)
	typ := testType(t)
	ev := browseWide(t, cfg, typ)
	old := mustRegisterWide(t, cfg, Service{Instance: "Ghost", Type: typ, Port: 5001})
	oldHost := old.Services()[0].Host
	ev.wait(t, Found, "Ghost", 20*time.Second)
	old.abandon()
	ev.wait(t, Lost, "Ghost", 30*time.Second) // the lease has ended
	r := mustRegisterWide(t, cfg, Service{Instance: "Ghost", Type: typ, Port: 5002})
	if got := r.Services()[0].Instance; got != "Ghost" {
		t.Fatalf("registered as %q, want the expired name \"Ghost\"", got)
	}
	if e := ev.wait(t, Found, "Ghost", 20*time.Second); e.Service.Port != 5002 {
		t.Fatalf("found %+v, want the new holder", e.Service)
	}
	c, _ := unicastdns.New(unicastdns.Config{Server: s.Addr.String()})
	if rrs, err := c.Query(context.Background(), oldHost, dns.TypeA); err != nil || len(rrs) != 0 {
		t.Fatalf("the old holder's host records = %v, %v; want none", rrs, err)
	}
}
