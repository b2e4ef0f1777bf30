//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package discovery

import "syscall"

// reuseControl does nothing on platforms without a known way to share the
// port: the first socket on 5353 gets it and later ones fail to bind.
func reuseControl(network, address string, c syscall.RawConn) error { return nil }
