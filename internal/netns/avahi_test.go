//go:build linux

package netns

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// avahiPair makes a lab of hosts b and c, each running Avahi, and returns
// them with c's Avahi.
func avahiPair(t *testing.T) (b, c *Host, ac *Avahi) {
	t.Helper()
	lab := New(t, "b", "c")
	b, c = lab.Host("b"), lab.Host("c")
	b.StartAvahi(t)
	return b, c, c.StartAvahi(t)
}

// TestAvahiAcrossHosts runs two independent Avahi daemons: the one in c
// publishes a service and the one in b finds it over the bridge.
func TestAvahiAcrossHosts(t *testing.T) {
	t.Parallel()
	b, c, ac := avahiPair(t)
	c.AvahiPublish(t, "Lab Service.1", "_nntest._tcp", 6666, "k=v w", "id=42")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := b.AvahiFind(ctx, "_nntest._tcp", func(s AvahiService) bool { return s.Name == "Lab Service.1" })
	if err != nil {
		t.Fatal(err)
	}
	if s.Address != c.Addr().String() || s.Port != 6666 || s.Host != ac.HostName+".local" ||
		s.Interface != "eth0" || s.Protocol != "IPv4" || s.Type != "_nntest._tcp" || s.Domain != "local" {
		t.Errorf("b resolved %+v; want c's service at %s:6666 on %s.local", s, c.Addr(), ac.HostName)
	}
	got := slices.Sorted(slices.Values(s.TXT))
	if want := []string{"id=42", "k=v w"}; !slices.Equal(got, want) {
		t.Errorf("TXT = %q; want %q", s.TXT, want)
	}

	// Withdrawing the service makes it go away (Avahi sends a goodbye).
	pub := c.AvahiPublish(t, "Short Lived", "_nntest._tcp", 7777)
	if _, err := b.AvahiFind(ctx, "_nntest._tcp", func(s AvahiService) bool { return s.Name == "Short Lived" }); err != nil {
		t.Fatal(err)
	}
	if err := pub.Stop(ctx); err == nil {
		t.Log("avahi-publish-service exited 0 on SIGTERM")
	}
	for {
		services, err := b.AvahiBrowse(ctx, "_nntest._tcp")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(services, func(s AvahiService) bool { return s.Name == "Short Lived" }) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("withdrawn service still listed: %+v", services)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestAvahiNeedsStart(t *testing.T) {
	t.Parallel()
	lab := New(t, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := lab.Host("a").AvahiBrowse(ctx, "_nntest._tcp"); err == nil {
		t.Fatal("AvahiBrowse without StartAvahi: want an error")
	}
}

// TestAvahiServiceFile publishes static service files: b finds them over the
// bridge, and a file the daemon refuses fails the test that adds it.
func TestAvahiServiceFile(t *testing.T) {
	t.Parallel()
	b, c, ac := avahiPair(t)
	group := func(name string, port int) string {
		return `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>` + name + `</name>
  <service>
    <type>_nntest._tcp</type>
    <port>` + strconv.Itoa(port) + `</port>
    <txt-record>id=static</txt-record>
    <txt-record>v=1</txt-record>
  </service>
</service-group>
`
	}
	ac.AddServiceFile(t, "one.service", group("Static One", 5001))
	ac.AddServiceFile(t, "two.service", group("Static Two", 5002))

	// The daemon refuses a second group with a name it already publishes.
	r := record(t, func(r *recordTB) { ac.AddServiceFile(r, "three.service", group("Static One", 5003)) })
	if !strings.Contains(r.failed, "three.service") || !strings.Contains(r.failed, "collision") {
		t.Errorf("AddServiceFile of a taken name failed with %q; want the daemon's collision report", r.failed)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for name, port := range map[string]int{"Static One": 5001, "Static Two": 5002} {
		s, err := b.AvahiFind(ctx, "_nntest._tcp", func(s AvahiService) bool { return s.Name == name })
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(s.TXT))
		if s.Port != port || s.Address != c.Addr().String() || s.Host != ac.HostName+".local" ||
			!slices.Equal(got, []string{"id=static", "v=1"}) {
			t.Errorf("b resolved %+v; want %s at %s:%d with TXT id=static v=1", s, name, c.Addr(), port)
		}
	}
}

// TestAvahiServiceFileName checks the file names AddServiceFile refuses
// before writing anything.
func TestAvahiServiceFileName(t *testing.T) {
	a := &Avahi{Dir: t.TempDir()}
	for _, name := range []string{"", "x.txt", "../x.service", "d/x.service", ".service", ".x.service"} {
		r := record(t, func(r *recordTB) { a.AddServiceFile(r, name, "") })
		if !strings.Contains(r.failed, "bad file name") {
			t.Errorf("AddServiceFile(%q) failed with %q; want a bad file name", name, r.failed)
		}
	}
}

// On IPv6-only hosts Avahi runs over IPv6 (use-ipv6=yes) and resolves a
// service at the publisher's link-local address.
func TestAvahiIPv6Only(t *testing.T) {
	t.Parallel()
	lab := NewIPv6Only(t, "b", "c")
	b, c := lab.Host("b"), lab.Host("c")
	b.StartAvahi(t)
	c.StartAvahi(t)
	c.AvahiPublish(t, "Six", "_nntest._tcp", 6666)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := b.AvahiFind(ctx, "_nntest._tcp", func(s AvahiService) bool { return s.Name == "Six" })
	if err != nil {
		t.Fatal(err)
	}
	if want := c.LinkLocal(t).WithZone(""); s.Protocol != "IPv6" || s.Address != want.String() || s.Port != 6666 {
		t.Errorf("b resolved %+v; want c's service over IPv6 at %s port 6666", s, want)
	}
}
