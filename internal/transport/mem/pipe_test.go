package mem

import (
	"net"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The pipe under every in-memory connection and stream behaves as a
// net.Conn must: deadlines, concurrent use, close.
func TestPipeIsANetConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := newPipe(Addr("mem:1"), Addr("mem:2"))
		return a, b, func() { a.Close(); b.Close() }, nil
	})
}
