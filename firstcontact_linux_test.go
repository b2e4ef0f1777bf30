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
// closing the nodes leaves nothing behind (goleak in TestMain). When
// coturn restarts (b's allocation is gone), b opens a new mailbox and its
// record follows, and a reaches b through it again. The multi-host
// version, through NATs, is internal/e2e TestFirstContact.
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
	turn, restartTURN := startLoopbackTURN(t, ctx)
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
	b.ice.SetPermitEvery(300 * time.Millisecond) // notices a lost allocation soon
	if err := b.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	// advertWith waits for b's wide-area advert with mailbox mbx ("": any).
	advertWith := func(mbx string) Advert {
		t.Helper()
		found := make(chan Advert, 1)
		bctx, bcancel := context.WithCancel(ctx)
		defer bcancel()
		browsed := make(chan error, 1)
		go func() {
			browsed <- a.Browse(bctx, func(e BrowseEvent) {
				if (e.Kind == Found || e.Kind == Updated) && e.ID == b.ID() && e.isWideArea() &&
					(mbx == "" || e.TXT[icepath.TXTMailbox] == mbx) {
					select {
					case found <- e.Advert:
					default:
					}
				}
			})
		}()
		defer func() { bcancel(); <-browsed }()
		select {
		case adv := <-found:
			return adv
		case <-ctx.Done():
			t.Fatalf("b's wide-area advert with mailbox %q not found", mbx)
		}
		return Advert{}
	}
	contact := func(adv Advert, msg string) {
		t.Helper()
		mbx, err := netip.ParseAddrPort(adv.TXT[icepath.TXTMailbox])
		if err != nil || mbx.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("b's wide-area TXT %v: want %s=127.0.0.1:port, its mailbox on coturn", adv.TXT, icepath.TXTMailbox)
		}
		// An address that leads nowhere (no route in this namespace):
		// only the mailbox reaches b.
		adv.Addrs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
		began := time.Now()
		c, err := a.ConnectAdvert(ctx, adv)
		if err != nil {
			t.Fatalf("ConnectAdvert through b's mailbox: %v", err)
		}
		took := time.Since(began)
		cb, err := b.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sendOne(t, ctx, c, cb, msg)
		sendOne(t, ctx, cb, c, "and back")
		if k := c.Path().Kind; k == PathLAN || cb.Path().Kind != k {
			t.Fatalf("paths %v (dialer) and %v (listener); want the same path beyond the LAN", k, cb.Path().Kind)
		}
		t.Logf("path %+v, ConnectAdvert took %v", c.Path(), took.Round(time.Millisecond))
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*Conn{c, cb} {
			select {
			case <-x.Done():
			case <-ctx.Done():
				t.Fatal("a closed Conn not done")
			}
		}
	}
	contact(advertWith(""), "first contact")

	old, opened := b.ice.Mailbox()
	restartTURN()
	for {
		mbx, n := b.ice.Mailbox()
		if n > opened {
			contact(advertWith(mbx), "through the new mailbox")
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("b still has its mailbox %s after coturn restarted", old)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startLoopbackTURN runs coturn on a free UDP port of 127.0.0.1 until the
// test ends and returns it as an ICE server, and a function that restarts
// it (every allocation is lost).
func startLoopbackTURN(t *testing.T, ctx context.Context) (ICEServer, func()) {
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
	start := func() *netns.Proc {
		p := netns.StartCmd(t, exec.Command("turnserver", "-c", f))
		if _, err := p.WaitLine(ctx, func(l string) bool {
			return strings.Contains(l, "Total General servers") || strings.Contains(l, "IPv4. UDP listener opened on")
		}); err != nil {
			t.Fatalf("coturn did not start: %v\n%s", err, p.Dump())
		}
		return p
	}
	p := start()
	restart := func() {
		t.Helper()
		if err := p.Stop(ctx); err != nil {
			t.Logf("coturn stopped: %v", err)
		}
		p = start()
	}
	return ICEServer{URL: fmt.Sprintf("turn:127.0.0.1:%d", port), Username: "nearnet", Password: "loopback-secret"}, restart
}
