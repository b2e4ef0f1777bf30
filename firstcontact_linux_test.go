package nearnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
// record follows, and a reaches b through it again. Subtest
// turn-restarted-relayed: a session that runs only on a relayed path
// survives coturn's restart by a first contact again. The multi-host
// version, through NATs, is internal/e2e TestFirstContact.
func TestFirstContactNode(t *testing.T) {
	netns.Require(t, fmt.Sprintf("root to run named and coturn: running as uid %d", os.Geteuid()), os.Geteuid() == 0)
	netns.RequireCommands(t, "named", "turnserver")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := dnstest.Write(dnstest.Options{Dir: t.TempDir(), Zone: "first.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	turn, stopTURN, startTURN := startLoopbackTURN(t, ctx)
	key := discovery.TSIGKey{Name: srv.Key.Name, Algorithm: srv.Key.Algorithm, Secret: srv.Key.Secret}
	node := func(name string, opts ...func(*Config)) *Node {
		cfg := &Config{Name: name, Key: testKey, Interfaces: []string{"lo"}, Service: "_nnfirst._tcp",
			Domain: srv.Zone, DNSServer: srv.Addr.String(), TSIGKey: key, DNSRefresh: time.Second,
			ICEServers: []ICEServer{turn}, DisablePathMonitor: true}
		for _, o := range opts {
			o(cfg)
		}
		n, err := NewNode(cfg)
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
	// advertWith waits until from browses b's wide-area advert with
	// mailbox mbx ("": any).
	advertWith := func(from *Node, mbx string) Advert {
		t.Helper()
		found := make(chan Advert, 1)
		bctx, bcancel := context.WithCancel(ctx)
		defer bcancel()
		browsed := make(chan error, 1)
		go func() {
			browsed <- from.Browse(bctx, func(e BrowseEvent) {
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
	contact(advertWith(a, ""), "first contact")

	// newMailbox waits until b has opened a mailbox since the one it had
	// when opened mailboxes were open, and returns its address.
	newMailbox := func(opened int) string {
		t.Helper()
		for {
			mbx, n := b.ice.Mailbox()
			if n > opened {
				return mbx
			}
			select {
			case <-ctx.Done():
				t.Fatalf("b still has its mailbox %s after coturn restarted", mbx)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	_, opened := b.ice.Mailbox()
	stopTURN()
	startTURN()
	contact(advertWith(a, newMailbox(opened)), "through the new mailbox")

	t.Run("turn-restarted-relayed", func(t *testing.T) {
		// c reaches b by first contact on a relayed path only (c
		// gathers relayed candidates alone) and b stops listening on the
		// LAN (a LAN redial is refused): coturn's restart takes the path
		// and every allocation with it, and the session resumes by a
		// first contact again, through b's new mailbox, which c reads
		// from b's record anew.
		b.mu.Lock()
		lns := b.listeners
		b.mu.Unlock()
		for _, ln := range lns {
			ln.Close()
		}
		c := node("first-c", func(cfg *Config) { cfg.DropTime = 3 * time.Second })
		c.ice.SetRelayOnly()
		mbx, opened := b.ice.Mailbox()
		adv := advertWith(c, mbx)
		adv.Addrs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
		cc, err := c.ConnectAdvert(ctx, adv)
		if err != nil {
			t.Fatalf("ConnectAdvert through b's mailbox: %v", err)
		}
		cb, err := b.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		relayed := func(when string) {
			t.Helper()
			if k, kb := cc.Path().Kind, cb.Path().Kind; k != PathRelayed || kb != PathRelayed {
				t.Fatalf("%s: paths %v (c) and %v (b), want relayed", when, k, kb)
			}
			// Each session owns the path its link runs on (else the
			// path would close under it once first contact's time ends).
			if !c.ice.OnOwnPath(cc.s) || !b.ice.OnOwnPath(cb.s) {
				t.Fatalf("%s: a session does not own the path it runs on (c %v, b %v)", when, c.ice.OnOwnPath(cc.s), b.ice.OnOwnPath(cb.s))
			}
		}
		relayed("first contact")
		next, got := 0, 0
		send := func(n int) {
			t.Helper()
			for range n {
				if err := cc.SendMessage(ctx, []byte(strconv.Itoa(next))); err != nil {
					t.Fatalf("message %d: %v", next, err)
				}
				next++
			}
		}
		recv := func() {
			t.Helper()
			for ; got < next; got++ {
				m, err := cb.ReceiveMessage(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", got, err)
				}
				if string(m) != strconv.Itoa(got) {
					t.Fatalf("message %d is %q: lost, duplicated or out of order", got, m)
				}
			}
		}
		send(10) // before
		recv()
		stopTURN()
		send(5) // during: before the link breaks
		for !cc.s.Suspended() && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		t.Log("c: suspended")
		send(5) // during: while the session waits
		began := time.Now()
		startTURN()
		recv()
		t.Logf("resumed %v after coturn started again; b's mailbox %s -> %s", time.Since(began).Round(time.Millisecond), mbx, newMailbox(opened))
		relayed("after coturn's restart")
		send(10) // after
		recv()
		sendOne(t, ctx, cb, cc, "and back")
		if err := cc.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-cb.Done():
		case <-ctx.Done():
			t.Fatal("b's Conn not done after c closed it")
		}
	})
}

// startLoopbackTURN runs coturn on a free UDP port of 127.0.0.1 until the
// test ends and returns it as an ICE server, and functions that stop it
// and start it again (a restart: every allocation is lost).
func startLoopbackTURN(t *testing.T, ctx context.Context) (ICEServer, func(), func()) {
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
	stop := func() {
		t.Helper()
		if err := p.Stop(ctx); err != nil {
			t.Logf("coturn stopped: %v", err)
		}
	}
	return ICEServer{URL: fmt.Sprintf("turn:127.0.0.1:%d", port), Username: "nearnet", Password: "loopback-secret"}, stop, func() { p = start() }
}
