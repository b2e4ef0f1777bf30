package nearnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/internal/icepath"
	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/unicastdns/dnstest"
)

// TestFirstContactNode runs first contact (PROTOCOL.md section 18) through
// the node API on loopback, with BIND9 and coturn: b registers with a
// mailbox (TXT "mbx"), a finds its wide-area advert, and ConnectAdvert with
// an address that leads nowhere reaches b through the mailbox: a path
// beyond the LAN carries messages both ways, both Conns say so, and
// closing the nodes leaves nothing behind (goleak in TestMain). The
// multi-host version, through NATs, is internal/e2e TestFirstContact.
func TestFirstContactNode(t *testing.T) {
	netns.Require(t, fmt.Sprintf("root to run named and coturn: running as uid %d", os.Geteuid()), os.Geteuid() == 0)
	netns.RequireCommands(t, "named", "turnserver")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := dnstest.Write(dnstest.Options{Dir: t.TempDir(), Zone: "first.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	turn := startLoopbackTURN(t, ctx)
	key := discovery.TSIGKey{Name: srv.Key.Name, Algorithm: srv.Key.Algorithm, Secret: srv.Key.Secret}
	node := func(name string) *Node {
		n, err := NewNode(&Config{Name: name, Key: testKey, Interfaces: []string{"lo"}, Service: "_nnfirst._tcp",
			Domain: srv.Zone, DNSServer: srv.Addr.String(), TSIGKey: key, DNSRefresh: time.Second,
			ICEServers: []ICEServer{turn}, DisablePathMonitor: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a, b := node("first-a"), node("first-b")
	if err := b.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	found := make(chan Advert, 1)
	bctx, bcancel := context.WithCancel(ctx)
	browsed := make(chan error, 1)
	go func() {
		browsed <- a.Browse(bctx, func(e BrowseEvent) {
			if e.Kind == Found && e.ID == b.ID() && e.isWideArea() {
				select {
				case found <- e.Advert:
				default:
				}
			}
		})
	}()
	var adv Advert
	select {
	case adv = <-found:
	case <-ctx.Done():
		t.Fatal("b's wide-area advert not found")
	}
	bcancel()
	<-browsed
	mbx, err := netip.ParseAddrPort(adv.TXT[icepath.TXTMailbox])
	if err != nil || mbx.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("b's wide-area TXT %v: want %s=127.0.0.1:port, its mailbox on coturn", adv.TXT, icepath.TXTMailbox)
	}
	// An address that leads nowhere (no route in this namespace): only
	// the mailbox reaches b.
	adv.Addrs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	c, err := a.ConnectAdvert(ctx, adv)
	if err != nil {
		t.Fatalf("ConnectAdvert through b's mailbox: %v", err)
	}
	cb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sendOne(t, ctx, c, cb, "first contact")
	sendOne(t, ctx, cb, c, "and back")
	if k := c.Path().Kind; k == PathLAN || cb.Path().Kind != k {
		t.Fatalf("paths %v (dialer) and %v (listener); want the same path beyond the LAN", k, cb.Path().Kind)
	}
	t.Logf("path %+v", c.Path())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// startLoopbackTURN runs coturn on a free UDP port of 127.0.0.1 until the
// test ends and returns it as an ICE server.
func startLoopbackTURN(t *testing.T, ctx context.Context) ICEServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf(`listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=%d
min-port=49152
max-port=49999
realm=nearnet.test
lt-cred-mech
user=nearnet:loopback-secret
no-tls
no-dtls
no-cli
no-tcp
allow-loopback-peers
pidfile=%[2]s/turnserver.pid
userdb=%[2]s/turndb
log-file=stdout
simple-log
`, port, dir)
	f := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := netns.StartCmd(t, exec.Command("turnserver", "-c", f))
	if _, err := p.WaitLine(ctx, func(l string) bool {
		return strings.Contains(l, "Total General servers") || strings.Contains(l, "IPv4. UDP listener opened on")
	}); err != nil {
		t.Fatalf("coturn did not start: %v\n%s", err, p.Dump())
	}
	return ICEServer{URL: fmt.Sprintf("turn:127.0.0.1:%d", port), Username: "nearnet", Password: "loopback-secret"}
}
