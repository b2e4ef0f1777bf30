package unicastdns_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/unicastdns/dnstest"
)

// server is the one named all tests of the package share (nil, with
// serverErr saying why, when it cannot run here).
var (
	server    *dnstest.Server
	serverErr string
)

func TestMain(m *testing.M) {
	stop := startServer()
	code := m.Run()
	stop() // before the leak check: its goroutine waits for named
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func startServer() func() {
	if os.Geteuid() != 0 {
		serverErr = fmt.Sprintf("root to run named: running as uid %d", os.Geteuid())
		return func() {}
	}
	if _, err := exec.LookPath("named"); err != nil {
		serverErr = "named (Debian package bind9) in $PATH"
		return func() {}
	}
	dir, err := os.MkdirTemp("", "nearnet-named-")
	if err != nil {
		serverErr = err.Error()
		return func() {}
	}
	s, err := dnstest.Write(dnstest.Options{Dir: dir, Zone: "nearnet.test"})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = s.Run(ctx)
		cancel()
	}
	if err != nil {
		serverErr = "a running named: " + err.Error()
		os.RemoveAll(dir)
		return func() {}
	}
	server = s
	return func() {
		s.Close()
		os.RemoveAll(dir)
	}
}

// needServer skips (or, with NEARNET_INTEROP=required, fails) a test when
// named could not be started.
func needServer(t *testing.T) *dnstest.Server {
	t.Helper()
	netns.Require(t, serverErr, server != nil)
	return server
}
