package proxytest

import (
	"net"
	"net/url"
	"testing"
)

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago
// (another process may take it before the caller binds it).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Credentials tests may give [Tinyproxy] and [Dante]. Password is in the
// characters tinyproxy accepts ([-a-z0-9._], upper case too), so a test can
// check that no output shows it.
const (
	User     = "nearnet"
	Password = "s3cr3t-Pw"
)

// URL is scheme://User:pass@addr, a proxy URL for [Tinyproxy] ("http") or
// [Dante] ("socks5", "socks5h") with pass as the password.
func URL(scheme, pass, addr string) string {
	return (&url.URL{Scheme: scheme, User: url.UserPassword(User, pass), Host: addr}).String()
}
