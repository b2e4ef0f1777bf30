package netns

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestAvahiAcrossHosts runs two independent Avahi daemons: the one in c
// publishes a service and the one in b finds it over the bridge.
func TestAvahiAcrossHosts(t *testing.T) {
	t.Parallel()
	lab := New(t, "b", "c")
	b, c := lab.Host("b"), lab.Host("c")
	b.StartAvahi(t)
	ac := c.StartAvahi(t)
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
