package unicastdns_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/unicastdns"
)

func mustClient(t *testing.T, cfg unicastdns.Config) *unicastdns.Client {
	t.Helper()
	c, err := unicastdns.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return r
}

func texts(rrs []dns.RR) []string {
	var out []string
	for _, r := range rrs {
		if txt, ok := r.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out
}

// TestUpdateAndQuery adds, replaces and deletes records through a real
// BIND9 with a TSIG-signed update and reads them back with queries.
func TestUpdateAndQuery(t *testing.T) {
	s := needServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mustClient(t, s.Config())
	name := "upd1." + s.Zone

	var u unicastdns.Update
	u.DeleteName(name)
	u.Add(rr(t, name+" 30 IN TXT \"one\""), rr(t, name+" 30 IN TXT \"two\""), rr(t, name+" 30 IN A 10.0.0.7"))
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := c.Query(ctx, name, dns.TypeTXT)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if tx := texts(got); len(tx) != 2 {
		t.Fatalf("TXT = %v, want one and two", tx)
	}

	// Delete one record, then the whole TXT RRset.
	u = unicastdns.Update{}
	u.Delete(rr(t, name+" 30 IN TXT \"one\""))
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("Update (delete one): %v", err)
	}
	got, _ = c.Query(ctx, name, dns.TypeTXT)
	if tx := texts(got); len(tx) != 1 || tx[0] != "two" {
		t.Fatalf("TXT after deleting one = %v, want [two]", tx)
	}
	u = unicastdns.Update{}
	u.DeleteRRset(name, dns.TypeTXT)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("Update (delete RRset): %v", err)
	}
	got, err = c.Query(ctx, name, dns.TypeTXT)
	if err != nil || len(got) != 0 {
		t.Fatalf("TXT after deleting the RRset = %v, %v; want none", got, err)
	}
	got, err = c.Query(ctx, name, dns.TypeA)
	if err != nil || len(got) != 1 {
		t.Fatalf("A = %v, %v; want the A record kept", got, err)
	}

	// A name that never existed: no records, no error.
	got, err = c.Query(ctx, "nothing-here."+s.Zone, dns.TypeTXT)
	if err != nil || len(got) != 0 {
		t.Fatalf("Query of a missing name = %v, %v; want none, nil", got, err)
	}
}

// TestLargeAnswerOverTCP reads an RRset too large for a UDP answer: the
// client retries over TCP after truncation.
func TestLargeAnswerOverTCP(t *testing.T) {
	s := needServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mustClient(t, s.Config())
	name := "big." + s.Zone
	var u unicastdns.Update
	u.DeleteName(name)
	long := strings.Repeat("x", 200)
	for i := range 40 {
		u.Add(rr(t, name+" 30 IN TXT \""+long+string(rune('A'+i%26))+string(rune('a'+i/26))+"\""))
	}
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("Update of 8 KB (over TCP): %v", err)
	}
	got, err := c.Query(ctx, name, dns.TypeTXT)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if len(got) != 40 {
		t.Fatalf("got %d TXT records, want 40", len(got))
	}
}

// TestBadKey: a wrong secret and an unknown key name each fail at once,
// permanently, with ErrBadKey; nothing is retried and nothing is changed.
func TestBadKey(t *testing.T) {
	s := needServer(t)
	for _, tc := range []struct {
		name string
		key  unicastdns.Key
		tsig int
	}{
		{"wrong secret", unicastdns.Key{Name: s.Key.Name, Algorithm: "hmac-sha256", Secret: []byte("not the secret at all, 32 bytes")}, dns.RcodeBadSig},
		{"unknown name", unicastdns.Key{Name: "stranger", Algorithm: "hmac-sha256", Secret: s.Key.Secret}, dns.RcodeBadKey},
		{"wrong algorithm", unicastdns.Key{Name: s.Key.Name, Algorithm: "hmac-sha512", Secret: s.Key.Secret}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := s.Config()
			cfg.Key = tc.key
			cfg.Attempts = 5
			c := mustClient(t, cfg)
			var u unicastdns.Update
			name := "badkey." + s.Zone
			u.Add(rr(t, name+" 30 IN TXT \"x\""))
			err := c.Update(ctx, &u)
			if !errors.Is(err, unicastdns.ErrBadKey) {
				t.Fatalf("Update = %v, want ErrBadKey", err)
			}
			if !unicastdns.IsPermanent(err) {
				t.Fatalf("error %v is not permanent", err)
			}
			var e *unicastdns.Error
			if !errors.As(err, &e) || e.Op != "update" || (tc.tsig != 0 && e.TSIGError != tc.tsig) {
				t.Fatalf("error %#v, want TSIG error %d", err, tc.tsig)
			}
			if strings.Contains(err.Error(), string(tc.key.Secret)) {
				t.Fatalf("error shows the secret: %v", err)
			}
			got, _ := mustClient(t, s.Config()).Query(ctx, name, dns.TypeTXT)
			if len(got) != 0 {
				t.Fatalf("a rejected update changed the zone: %v", got)
			}
		})
	}
}

// TestUnsignedRefused: without a key the server refuses the update, at once.
func TestUnsignedRefused(t *testing.T) {
	s := needServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := s.Config()
	cfg.Key = unicastdns.Key{}
	cfg.Attempts = 5
	var u unicastdns.Update
	u.Add(rr(t, "unsigned."+s.Zone+" 30 IN TXT \"x\""))
	err := mustClient(t, cfg).Update(ctx, &u)
	var e *unicastdns.Error
	if !errors.As(err, &e) || e.Rcode != dns.RcodeRefused || !e.Permanent() {
		t.Fatalf("unsigned Update = %v, want a permanent REFUSED", err)
	}
}

// TestNotZone: a name outside the zone is NOTZONE, permanent.
func TestNotZone(t *testing.T) {
	s := needServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var u unicastdns.Update
	u.Add(rr(t, "elsewhere.example. 30 IN TXT \"x\""))
	err := mustClient(t, s.Config()).Update(ctx, &u)
	var e *unicastdns.Error
	if !errors.As(err, &e) || e.Rcode != dns.RcodeNotZone || !e.Permanent() {
		t.Fatalf("Update outside the zone = %v, want a permanent NOTZONE", err)
	}
}

// TestNoServerRetries: a port where nothing answers is a transient failure,
// tried Attempts times, ending with a timeout error that is not permanent.
func TestNoServerRetries(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0") // holds the port, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := mustClient(t, unicastdns.Config{Server: pc.LocalAddr().String(), Zone: "nearnet.test", Timeout: 100 * time.Millisecond, Attempts: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.Query(ctx, "x.nearnet.test", dns.TypeTXT)
	var e *unicastdns.Error
	if !errors.As(err, &e) || e.Permanent() || !e.Timeout() {
		t.Fatalf("Query of a silent server = %v, want a transient timeout", err)
	}
	// Both attempts reached the socket.
	pc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	for i := range 2 {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			t.Fatalf("attempt %d not received: %v", i+1, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []unicastdns.Config{
		{},
		{Server: "a:b:c:d:"},
		{Server: "127.0.0.1:53", Zone: "bad..zone"},
		{Server: "127.0.0.1:53", Timeout: -1},
		{Server: "127.0.0.1:53", Attempts: -1},
		{Server: "127.0.0.1:53", Key: unicastdns.Key{Name: "k", Algorithm: "hmac-md4", Secret: []byte("s")}},
		{Server: "127.0.0.1:53", Key: unicastdns.Key{Name: "k"}},
		{Server: "127.0.0.1:53", Key: unicastdns.Key{Secret: []byte("s")}},
	} {
		_, err := unicastdns.New(cfg)
		var ce *nnerr.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("New(%+v) = %v, want a ConfigError", cfg, err)
		}
	}
	c, err := unicastdns.New(unicastdns.Config{Server: "10.0.0.53"})
	if err != nil || c.Server() != "10.0.0.53:53" {
		t.Fatalf("bare host: %v, %v", c, err)
	}
	var u unicastdns.Update
	var ce *nnerr.ConfigError
	if err := c.Update(context.Background(), &u); !errors.As(err, &ce) {
		t.Fatalf("Update without a zone = %v, want a ConfigError", err)
	}
}

// TestPrerequisites: an update whose prerequisite fails changes nothing and
// reports ErrPrerequisite, permanently; one whose prerequisites hold applies.
func TestPrerequisites(t *testing.T) {
	s := needServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mustClient(t, s.Config())
	name := "prereq." + s.Zone
	var u unicastdns.Update
	u.RequireNameNotInUse(name)
	u.Add(rr(t, name+" 30 IN TXT \"first\""))
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	// The name is in use now: a second claim fails and adds nothing.
	u = unicastdns.Update{}
	u.RequireNameNotInUse(name)
	u.Add(rr(t, name+" 30 IN TXT \"second\""))
	err := c.Update(ctx, &u)
	if !errors.Is(err, unicastdns.ErrPrerequisite) || !unicastdns.IsPermanent(err) {
		t.Fatalf("second claim = %v, want a permanent ErrPrerequisite", err)
	}
	u = unicastdns.Update{}
	u.RequireNoRRset(name, dns.TypeTXT)
	if err := c.Update(ctx, &u); !errors.Is(err, unicastdns.ErrPrerequisite) {
		t.Fatalf("RequireNoRRset of an existing RRset = %v, want ErrPrerequisite", err)
	}
	u = unicastdns.Update{}
	u.RequireNoRRset(name, dns.TypeSRV)
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("RequireNoRRset of a missing RRset: %v", err)
	}
	// Replace the record only if it is still "first".
	u = unicastdns.Update{}
	u.RequireRRset(rr(t, name+" 30 IN TXT \"stale\""))
	u.DeleteRRset(name, dns.TypeTXT)
	if err := c.Update(ctx, &u); !errors.Is(err, unicastdns.ErrPrerequisite) {
		t.Fatalf("replace with a wrong prerequisite = %v, want ErrPrerequisite", err)
	}
	u = unicastdns.Update{}
	u.RequireRRset(rr(t, name+" 30 IN TXT \"first\""))
	u.DeleteRRset(name, dns.TypeTXT)
	u.Add(rr(t, name+" 30 IN TXT \"third\""))
	if err := c.Update(ctx, &u); err != nil {
		t.Fatalf("replace: %v", err)
	}
	got, _ := c.Query(ctx, name, dns.TypeTXT)
	if tx := texts(got); len(tx) != 1 || tx[0] != "third" {
		t.Fatalf("TXT = %v, want [third]", tx)
	}
}
