package proxy

import (
	"errors"
	"testing"
)

func TestFromEnvironment(t *testing.T) {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(v, "")
	}
	get := func(target string) string {
		t.Helper()
		d, err := FromEnvironment(target, nil)
		if err != nil {
			t.Fatalf("FromEnvironment(%q): %v", target, err)
		}
		if d == nil {
			return "direct"
		}
		return d.String()
	}
	if got := get("peer.lan:443"); got != "direct" {
		t.Errorf("no variables: %s", got)
	}

	t.Setenv("all_proxy", "socks5://u:"+testPass+"@socks.lan:1080")
	if got := get("peer.lan:443"); got != "socks5://u:xxxxx@socks.lan:1080" {
		t.Errorf("all_proxy: %s", got)
	}
	t.Setenv("ALL_PROXY", "socks5h://socks2.lan")
	if got := get("peer.lan:443"); got != "socks5h://socks2.lan:1080" {
		t.Errorf("ALL_PROXY over all_proxy: %s", got)
	}
	t.Setenv("https_proxy", "proxy.lan:3128") // no scheme: http
	if got := get("peer.lan:443"); got != "http://proxy.lan:3128" {
		t.Errorf("https_proxy over ALL_PROXY: %s", got)
	}
	t.Setenv("HTTPS_PROXY", "http://u:"+testPass+"@proxy2.lan:3128")
	if got := get("peer.lan:443"); got != "http://u:xxxxx@proxy2.lan:3128" {
		t.Errorf("HTTPS_PROXY over https_proxy: %s", got)
	}

	t.Setenv("no_proxy", "ignored.lan")
	t.Setenv("NO_PROXY", "example.com, .only-sub.lan, 10.0.0.0/8, 192.168.1.5, peer.lan:7000, [fd00::1]:9")
	for target, want := range map[string]bool{
		"peer.lan:443":      true,
		"ignored.lan:443":   true, // NO_PROXY wins over no_proxy
		"example.com:1":     false,
		"a.b.EXAMPLE.com:1": false,
		"notexample.com:1":  true,
		"only-sub.lan:1":    true,
		"x.only-sub.lan:1":  false,
		"10.1.2.3:1":        false,
		"11.1.2.3:1":        true,
		"192.168.1.5:1":     false,
		"192.168.1.6:1":     true,
		"peer.lan:7000":     false,
		"[fd00::1]:9":       false,
		"[fd00::1]:10":      true,
		"localhost:1":       false, // never proxied, as in net/http
		"127.0.0.1:1":       false,
		"[::1]:1":           false,
	} {
		if got := get(target) != "direct"; got != want {
			t.Errorf("%s: proxied %v, want %v", target, got, want)
		}
	}
	t.Setenv("NO_PROXY", "*")
	if got := get("peer.lan:443"); got != "direct" {
		t.Errorf("NO_PROXY=*: %s", got)
	}
	t.Setenv("NO_PROXY", "*.lan")
	if got := get("peer.lan:443"); got != "direct" {
		t.Errorf("NO_PROXY=*.lan: %s", got)
	}

	t.Setenv("NO_PROXY", "")
	t.Setenv("HTTPS_PROXY", "ftp://u:"+testPass+"@h:1")
	_, err := FromEnvironment("peer.lan:443", nil)
	var ue *URLError
	if !errors.As(err, &ue) {
		t.Fatalf("bad scheme: %v", err)
	}
	noSecrets(t, err.Error())
	t.Log(err)
	t.Setenv("HTTPS_PROXY", "http://u:"+testPass+"\x7f@h:1")
	_, err = FromEnvironment("peer.lan:443", nil)
	if !errors.As(err, &ue) {
		t.Fatalf("bad URL: %v", err)
	}
	noSecrets(t, err.Error())
	t.Log(err)
	if _, err := FromEnvironment("no-port", nil); err == nil {
		t.Error("a target without a port is accepted")
	}
}
