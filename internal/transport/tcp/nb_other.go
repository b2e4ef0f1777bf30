//go:build !unix

package tcp

import "net"

// newNBWriter: no non-blocking writes here; every message goes through
// the writer goroutine.
func newNBWriter(net.Conn) nbWriter { return nil }
