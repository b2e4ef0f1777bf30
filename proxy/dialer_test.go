package proxy

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:3128", "http://127.0.0.1:3128"},
		{"http://proxy.lan", "http://proxy.lan:80"},
		{"HTTPS://proxy.lan", "https://proxy.lan:443"},
		{"socks5://u:" + testPass + "@[::1]", "socks5://u:xxxxx@[::1]:1080"},
		{"socks5h://u@h:1", "socks5h://u@h:1"},
		{"http://u:p%40ss@h:8080/", "http://u:xxxxx@h:8080"},
	} {
		d, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if d.String() != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, d, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("u", 256)
	for _, tc := range []struct{ in, says string }{
		{"ftp://h:1", `scheme "ftp" is not supported`},
		{"127.0.0.1:3128", "no scheme"},
		{"//h:1", "no scheme"},
		{"http://", "no host"},
		{"http://:8080", "no host"},
		{"http://h:0", `port "0"`},
		{"http://h:99999", `port "99999"`},
		{"http://h:1/path", "has a path"},
		{"http://h:1?q", "query"},
		{"socks5://" + long + ":pw@h:1", "1 to 255 bytes"},
		{"http://:" + testPass + "@h:1", "empty user name"},
		{"http://a%3Ab:" + testPass + "@h:1/", "contains ':'"},
		{"http://user:" + testPass + "@h:bad", "invalid port"},
		{"http://user:" + testPass + "%zz@h:1", "invalid URL escape"},
		{"http://user:" + testPass + "\x7f@h:1", "invalid control character"},
		{"user:" + testPass + "@h:8080", "no scheme"}, // url.Parse takes "user" for a scheme
	} {
		_, err := Parse(tc.in)
		var ue *URLError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q): %v (%T), want a *URLError", tc.in, err, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Parse(%q): %q does not say %q", tc.in, err, tc.says)
		}
		noSecrets(t, err.Error())
		t.Log(err)
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) works")
	}
	// New itself, given such a URL, hides the password too.
	u, _ := url.Parse("user:" + testPass + "@h:8080")
	if _, err := New(u, nil); err == nil || strings.Contains(err.Error(), testPass) {
		t.Errorf("New(opaque URL): %v", err)
	}
}

func TestRedactRaw(t *testing.T) {
	for _, tc := range []struct{ in, want, pass string }{
		{"http://u:p@h:1", "http://u:xxxxx@h:1", "p"},
		{"http://u:p@x@h:1/a@b", "http://u:xxxxx@h:1/a@b", "p@x"},
		{"u:p@h:1", "u:xxxxx@h:1", "p"},
		{"http://u@h:1", "http://u@h:1", ""},
		{"http://h:1", "http://h:1", ""},
	} {
		got, pass := redactRaw(tc.in)
		if got != tc.want || pass != tc.pass {
			t.Errorf("redactRaw(%q) = %q, %q; want %q, %q", tc.in, got, pass, tc.want, tc.pass)
		}
	}
}

func TestSecretThatIsPartOfTheURL(t *testing.T) {
	// A password of "1" must not turn the port 1080 into "xxxxx080".
	d := mustParse(t, "socks5://u:1@127.0.0.1:1080")
	_, err := d.DialContext(context.Background(), "udp", "a:1")
	if !strings.Contains(err.Error(), "127.0.0.1:1080") {
		t.Errorf("%v", err)
	}
}

func TestBadTarget(t *testing.T) {
	d := mustParse(t, proxyURL("http", testPass, "127.0.0.1:3128"))
	for _, tc := range []struct{ network, addr, says string }{
		{"udp", "h:1", "cannot go through a proxy"},
		{"tcp", "h", "missing port"},
		{"tcp", ":1", "no host"},
		{"tcp", "h:0", "out of range"},
		{"tcp", "h:nope", "not a number"},
		{"tcp", "a\r\nX-Evil:80", "neither an IP address nor a DNS name"},
		{"tcp", "a b:80", "neither"},
		{"tcp", "[fe80::1%eth0]:80", "zone"},
		{"tcp4", "[::1]:80", "not an address for tcp4"},
		{"tcp6", "127.0.0.1:80", "not an address for tcp6"},
	} {
		_, err := d.DialContext(context.Background(), tc.network, tc.addr)
		wantKind(t, err, BadTarget)
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s %q: %q does not say %q", tc.network, tc.addr, err, tc.says)
		}
	}
	if h, p, err := splitTarget("localhost:https"); err != nil || h != "localhost" || p != "443" {
		t.Errorf("splitTarget(localhost:https) = %q, %q, %v", h, p, err)
	}
}

func TestSOCKS5ResolveFailure(t *testing.T) {
	// socks5:// resolves locally: a name that does not resolve fails
	// before any connection to the proxy.
	u, _ := url.Parse(proxyURL("socks5", testPass, "127.0.0.1:1"))
	noDNS := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS in this test")
	}}
	d, err := New(u, &net.Dialer{Resolver: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.DialContext(dialCtx(t), "tcp", "no-such-host.invalid:80")
	e := wantKind(t, err, BadTarget)
	if e.Phase != PhaseResolve {
		t.Errorf("phase %v", e.Phase)
	}
	t.Log(err)
}

func TestErrorTexts(t *testing.T) {
	// Every kind's text names the proxy without the password, even when
	// the cause quotes it.
	d := mustParse(t, proxyURL("http", testPass, "127.0.0.1:3128"))
	for k := ProxyUnreachable; k <= BadTarget; k++ {
		for p := PhaseResolve; p <= PhaseSOCKSConnect; p++ {
			e := d.fail(k, p, "peer:1", 407, errors.New("echo: "+testPass+" "+basicToken(testPass)))
			s := e.Error()
			noSecrets(t, s)
			if !strings.Contains(s, "127.0.0.1:3128") {
				t.Errorf("%v/%v: %q does not name the proxy", k, p, s)
			}
			if strings.Contains(s, "Kind(") || strings.Contains(s, "Phase(") {
				t.Errorf("%v/%v: %q", k, p, s)
			}
		}
	}
	var ne net.Error = &Error{Kind: Timeout}
	if !ne.Timeout() {
		t.Error("Timeout() false for a Timeout")
	}
	if Kind(0).String() != "Kind(0)" || Phase(99).String() != "Phase(99)" {
		t.Error("String of an unknown Kind or Phase")
	}
}

func TestNewCopiesForward(t *testing.T) {
	fwd := &net.Dialer{}
	u, _ := url.Parse("http://127.0.0.1:1")
	d, err := New(u, fwd)
	if err != nil {
		t.Fatal(err)
	}
	fwd.Timeout = 1
	if d.forward.Timeout != 0 || d.timeout != DefaultTimeout {
		t.Error("New kept the caller's dialer")
	}
}
