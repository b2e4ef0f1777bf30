package proxy

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// FromEnvironment returns a Dialer for the proxy the environment names for
// dialing target (host:port), or nil, nil when no proxy applies.
//
// The proxy is HTTPS_PROXY (or https_proxy), else ALL_PROXY (or all_proxy),
// since a nearnet connection is TLS like an https request; a value without a
// scheme means http://. NO_PROXY (or no_proxy) lists the hosts to reach
// directly, by the rules of golang.org/x/net/http/httpproxy that net/http
// applies: entries separated by commas; "*" for all; an IP address or CIDR
// range; a domain name, which matches itself and its subdomains (".y.com"
// and "*.y.com" only the subdomains); each optionally with ":port". As in
// net/http, "localhost" and loopback addresses are never proxied. forward
// is as for [New].
func FromEnvironment(target string, forward *net.Dialer) (*Dialer, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("proxy: FromEnvironment: target %q: %w", target, err)
	}
	name, value := getenvAny("HTTPS_PROXY", "https_proxy")
	if value == "" {
		name, value = getenvAny("ALL_PROXY", "all_proxy")
	}
	if value == "" {
		return nil, nil
	}
	_, noProxy := getenvAny("NO_PROXY", "no_proxy")
	if !useProxy(noProxy, host, port) {
		return nil, nil
	}
	u, err := parseEnvProxy(value)
	if err != nil {
		red, _ := redactRaw(value)
		return nil, &URLError{URL: red, Reason: "$" + name + " does not parse as a URL"}
	}
	d, err := New(u, forward)
	if ue, ok := err.(*URLError); ok {
		ue.Reason += " (from $" + name + ")"
	}
	return d, err
}

// parseEnvProxy parses a proxy variable's value as httpproxy does: a value
// without a scheme or host is taken as http://value.
func parseEnvProxy(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if u2, err2 := url.Parse("http://" + v); err2 == nil {
			return u2, nil
		}
	}
	return u, err
}

// useProxy reports whether host:port is to be proxied under noProxy. It
// follows golang.org/x/net/http/httpproxy (v0.62.0) rule for rule, except
// that non-ASCII domain names in noProxy are not converted to punycode
// (that needs golang.org/x/text); targets here are ASCII anyway.
func useProxy(noProxy, host, port string) bool {
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return false
	}
	host = strings.ToLower(strings.TrimSpace(host))
	for _, p := range strings.Split(noProxy, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if p == "*" {
			return false
		}
		if _, pnet, err := net.ParseCIDR(p); err == nil {
			if ip != nil && pnet.Contains(ip) {
				return false
			}
			continue
		}
		phost, pport, err := net.SplitHostPort(p)
		if err == nil {
			if phost == "" {
				continue
			}
			if phost[0] == '[' && phost[len(phost)-1] == ']' {
				phost = phost[1 : len(phost)-1]
			}
		} else {
			phost = p
		}
		portOK := pport == "" || pport == port
		if pip := net.ParseIP(phost); pip != nil {
			if ip != nil && pip.Equal(ip) && portOK {
				return false
			}
			continue
		}
		if phost == "" || ip != nil {
			continue
		}
		if strings.HasPrefix(phost, "*.") {
			phost = phost[1:]
		}
		matchHost := phost[0] != '.'
		if matchHost {
			phost = "." + phost
		}
		if (strings.HasSuffix(host, phost) || matchHost && host == phost[1:]) && portOK {
			return false
		}
	}
	return true
}
func getenvAny(names ...string) (name, value string) {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return n, v
		}
	}
	return "", ""
}
