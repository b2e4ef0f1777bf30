// Package proxy dials TCP connections through an HTTP CONNECT proxy (with
// Basic credentials, optionally over TLS to the proxy) or a SOCKS5 proxy
// (with username and password), for reaching a peer by address when the
// way out goes through a proxy. mDNS discovery does not cross proxies.
//
// Start with [Parse] ("http://user:password@proxy:3128",
// "socks5://user:password@proxy:1080") or [FromEnvironment] (HTTPS_PROXY,
// ALL_PROXY, NO_PROXY), then [Dialer.DialContext]: the connection it
// returns carries the target's bytes, so TLS and everything above it work
// as on a direct connection. A failure is an [*Error] whose [Kind] tells a
// wrong password from an unreachable proxy, a refused target or a timeout,
// and whose text never holds the password. [Rank] measures a pool of
// proxies and orders the usable ones by latency.
package proxy
