package security

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if tests leave goroutines behind (a TLS handshake
// or connection not closed). It uses the standard library only, as goleak is
// not a dependency of this package.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var leaked []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			leaked = otherGoroutines()
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n\n%s\n", strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// otherGoroutines returns the stacks of all goroutines but the caller's and
// the signal handler's, which fuzzing and the test timeout start.
func otherGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && !strings.Contains(g, "os/signal.signal_recv") {
			out = append(out, g)
		}
	}
	return out
}

// side is one end of a TLS connection after its handshake.
type side struct {
	conn *tls.Conn
	err  error // from Handshake
}

// handshake connects a TLS client and server over a real loopback TCP
// connection and runs both handshakes to completion. Connections are closed
// when the test ends.
func handshake(t *testing.T, server, client *tls.Config) (srv, cli side) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan side, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- side{err: err}
			return
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, server)
		done <- side{tc, tc.HandshakeContext(ctx)}
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cli.conn = tls.Client(c, client)
	cli.err = cli.conn.HandshakeContext(ctx)
	if cli.err != nil {
		// Unblock a server still waiting for the client.
		cli.conn.Close()
	}
	srv = <-done
	if srv.conn != nil && srv.err != nil {
		srv.conn.Close()
	}
	t.Cleanup(func() {
		cli.conn.Close()
		if srv.conn != nil {
			srv.conn.Close()
		}
	})
	return srv, cli
}

// readErr reads from c until it fails, returning that error. A TLS 1.3
// client learns that the server rejected its certificate this way.
func readErr(c *tls.Conn) error {
	var buf [64]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return err
		}
	}
}

func newTestIdentity(t testing.TB) *Identity {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustContain(t *testing.T, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%q does not contain %q", s, p)
		}
	}
}
