//go:build linux

package proxytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
)

// Tinyproxy runs tinyproxy on 127.0.0.1 with BasicAuth user:pass, accepting
// clients from 127.0.0.1 only and allowing CONNECT to connectPorts only, and
// returns its address (host:port). tinyproxy takes user names and passwords
// of [-a-z0-9._] only (and upper case letters in practice).
func Tinyproxy(t testing.TB, user, pass string, connectPorts ...int) (addr string) {
	t.Helper()
	netns.RequireCommands(t, "tinyproxy")
	dir := t.TempDir()
	var err error
	for range 3 { // the free port may be taken before tinyproxy binds it
		port := FreePort(t)
		conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nMaxClients 64\nLogLevel Info\n"+
			"BasicAuth %s %s\n", port, user, pass)
		for _, p := range connectPorts {
			conf += fmt.Sprintf("ConnectPort %d\n", p)
		}
		path := filepath.Join(dir, "tinyproxy.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		p := netns.StartCmd(t, exec.Command("tinyproxy", "-d", "-c", path))
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = waitListening(t, p, addr); err == nil {
			return addr
		}
	}
	t.Fatalf("start tinyproxy: %v", err)
	return ""
}

// Dante runs danted on 127.0.0.1 with `socksmethod: username` for
// user:pass, accepting clients from 127.0.0.0/8 and allowing connections to
// 127.0.0.1 at allowPorts only, and returns its address (host:port).
//
// Dante checks the user against the system's password database, so the
// daemon runs in a mount namespace of its own in which /etc/passwd and
// /etc/shadow are copies with the user added (uid 64999): the machine's own
// files are not changed. That needs root, and unshare and openssl besides
// danted.
func Dante(t testing.TB, user, pass string, allowPorts ...int) (addr string) {
	t.Helper()
	netns.RequireCommands(t, "danted", "unshare", "openssl")
	netns.Require(t, fmt.Sprintf("root, for a private /etc/shadow for Dante's test user (running as uid %d)", os.Geteuid()), os.Geteuid() == 0)
	dir := t.TempDir()
	hash, err := exec.Command("openssl", "passwd", "-6", "-salt", "nearnettest", pass).Output()
	if err != nil {
		t.Fatalf("openssl passwd: %v", err)
	}
	for _, f := range []struct{ src, line string }{
		{"/etc/passwd", user + ":x:64999:64999::/nonexistent:/usr/sbin/nologin\n"},
		{"/etc/shadow", user + ":" + strings.TrimSpace(string(hash)) + ":19000:0:99999:7:::\n"},
	} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.src)), append(b, f.line...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		port := FreePort(t)
		var rules strings.Builder
		for _, p := range allowPorts {
			fmt.Fprintf(&rules, "socks pass {\n  from: 127.0.0.0/8 to: 127.0.0.1/32 port = %d\n  log: error connect disconnect\n}\n", p)
		}
		conf := fmt.Sprintf(danteConf, port, rules.String())
		path := filepath.Join(dir, "danted.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("mount --bind %s/passwd /etc/passwd && mount --bind %s/shadow /etc/shadow && exec danted -f %s -N 1",
			dir, dir, path)
		p := netns.StartCmd(t, exec.Command("unshare", "-m", "--", "sh", "-c", script))
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = waitListening(t, p, addr); err == nil {
			return addr
		}
	}
	t.Fatalf("start danted: %v", err)
	return ""
}

const danteConf = `logoutput: stderr
internal: 127.0.0.1 port = %d
external: 127.0.0.1
socksmethod: username
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
}
%ssocks block {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  log: error connect
}
`

// waitListening waits (boundedly) until something accepts on addr, or p
// exits.
func waitListening(t testing.TB, p *netns.Proc, addr string) error {
	t.Helper()
	for range 200 {
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited:\n%s", p, p.Dump())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("%s does not accept on %s after 5 s:\n%s", p, addr, p.Dump())
}
