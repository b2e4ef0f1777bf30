//go:build linux

package netns

import (
	"reflect"
	"testing"
)

// Captured from avahi-browse -rtp 0.8 for
// avahi-publish-service 'My Svc.1;x' _example._tcp 6666 'k=v w' 'q="x"' 'b\s' u=é
const avahiBrowseOutput = `+;eth0;IPv4;My\032Svc\.1\059x;_example._tcp;local
=;eth0;IPv4;My\032Svc\.1\059x;_example._tcp;local;avahi-c.local;10.99.0.2;6666;"u=\195\169" "b\\s" "q=\"x\"" "k=v w"
=;eth0;IPv4;plain;_example._tcp;local;a.local;10.99.0.1;7;
=;eth0;IPv4;broken;_example._tcp;local;a.local;10.99.0.1;notaport;
-;eth0;IPv4;gone;_example._tcp;local
`

func TestParseAvahiBrowse(t *testing.T) {
	got := ParseAvahiBrowse(avahiBrowseOutput)
	want := []AvahiService{{
		Interface: "eth0", Protocol: "IPv4", Name: "My Svc.1;x", Type: "_example._tcp", Domain: "local",
		Host: "avahi-c.local", Address: "10.99.0.2", Port: 6666,
		TXT: []string{"u=é", `b\s`, `q="x"`, "k=v w"},
	}, {
		Interface: "eth0", Protocol: "IPv4", Name: "plain", Type: "_example._tcp", Domain: "local",
		Host: "a.local", Address: "10.99.0.1", Port: 7,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseAvahiBrowse =\n%+v\nwant\n%+v", got, want)
	}
	if v, ok := got[0].TXTValue("K"); !ok || v != "v w" {
		t.Fatalf(`TXTValue("K") = %q, %v`, v, ok)
	}
	if _, ok := got[0].TXTValue("missing"); ok {
		t.Fatal(`TXTValue("missing") found something`)
	}
}

func FuzzParseAvahiBrowse(f *testing.F) {
	f.Add(avahiBrowseOutput)
	f.Add(`=;;;\;;;;;;1;"\`)
	f.Fuzz(func(t *testing.T, s string) {
		ParseAvahiBrowse(s) // must not panic
	})
}
