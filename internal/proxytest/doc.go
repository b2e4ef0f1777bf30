// Package proxytest starts real proxies for tests: tinyproxy (HTTP CONNECT
// with BasicAuth, [Tinyproxy]) and Dante (SOCKS5 with username/password,
// [Dante]), each on a free port of 127.0.0.1, allowed to reach chosen ports
// of 127.0.0.1 only, and killed when the test ends.
//
// A test whose prerequisites are missing (the programs, or root for Dante)
// is skipped through [netns.Require], or fails when NEARNET_INTEROP=required.
// The package is Linux-only; elsewhere it is empty.
package proxytest
