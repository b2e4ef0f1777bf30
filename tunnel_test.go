package nearnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/nearnet/nearnet/internal/relaytest"
	"github.com/nearnet/nearnet/tunnel"
)

// lossyDevice drops and reorders what the stack sends: each packet is
// dropped with probability loss, or held back until the next one with
// probability loss, from a seeded source (the same run each time).
type lossyDevice struct {
	tunnel.Device
	loss float64

	mu      sync.Mutex // guards the fields below
	rng     *rand.Rand
	held    []byte
	dropped int
	swapped int
}

func (d *lossyDevice) WritePacket(p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.rng.Float64()
	switch {
	case r < d.loss:
		d.dropped++
		return nil
	case r < 2*d.loss && d.held == nil:
		d.swapped++
		d.held = append([]byte(nil), p...)
		return nil
	}
	err := d.Device.WritePacket(p)
	if d.held != nil && err == nil {
		err = d.Device.WritePacket(d.held)
		d.held = nil
	}
	return err
}

// tunnelPair returns two stacks, 10.9.0.1 / fd00:9::1 and 10.9.0.2 /
// fd00:9::2, joined by an in-memory packet pipe that loses and reorders
// loss of the packets each way.
func tunnelPair(t testing.TB, loss float64) (a, b *tunnel.Stack, da, db *lossyDevice) {
	return tunnelPairMTU(t, loss, 0)
}

// tunnelPairMTU is tunnelPair with the pipe's MTU.
func tunnelPairMTU(t testing.TB, loss float64, mtu int) (a, b *tunnel.Stack, da, db *lossyDevice) {
	t.Helper()
	pa, pb := tunnel.Pipe()
	da = &lossyDevice{Device: pa, loss: loss, rng: rand.New(rand.NewPCG(1, 2))}
	db = &lossyDevice{Device: pb, loss: loss, rng: rand.New(rand.NewPCG(3, 4))}
	var err error
	if a, err = tunnel.New(da, tunnel.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("fd00:9::1/64")}, MTU: mtu}); err != nil {
		t.Fatal(err)
	}
	if b, err = tunnel.New(db, tunnel.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd00:9::2/64")}, MTU: mtu}); err != nil {
		t.Fatal(err)
	}
	// Registered before the nodes' cleanups, so it runs after them.
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, da, db
}

// newTunnelNode starts a node on st alone, over transport tr.
func newTunnelNode(t testing.TB, st *tunnel.Stack, tr Transport, cfg Config) *Node {
	t.Helper()
	if cfg.Key == nil && cfg.Security == SecurityAuto {
		cfg.Key = testKey
	}
	cfg.Tunnel, cfg.Transport = st, tr
	n, err := NewNode(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// tunnelAddr is b's address inside the tunnel with its listener's port.
func tunnelAddr(b *Node, ip string) string {
	_, port, _ := net.SplitHostPort(b.Addr().String())
	return net.JoinHostPort(ip, port)
}

// Two nodes, each on its own userspace stack, joined by a packet pipe that
// drops and reorders 1 % of the packets each way: messages, a stream as a
// net.Conn, datagrams and a 64 MiB file (8 MiB over QUIC; on a pipe of
// 16 KiB packets), over TCP and over QUIC, IPv4 and IPv6, with nothing
// reliable lost.
func TestTunnelPipe(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		sa, sb, da, db := tunnelPair(t, 0.01)
		a, b := newTunnelNode(t, sa, tr, Config{}), newTunnelNode(t, sb, tr, Config{})
		for _, ip := range []string{"10.9.0.2", "fd00:9::2"} {
			t.Run(ip, func(t *testing.T) {
				ca, cb := pairAt(t, a, b, tunnelAddr(b, ip))
				ctx := ctxT(t)
				for i := range 100 {
					sendOne(t, ctx, ca, cb, "hello "+string(rune('a'+i%26)))
					sendOne(t, ctx, cb, ca, "hello back")
				}
				if transportOf(ca) != tr {
					t.Fatalf("connected over %v, want %v", transportOf(ca), tr)
				}
				sendUntil(t, ca, cb, "datagram")
				sendUntil(t, cb, ca, "datagram back")
				if ip == "10.9.0.2" { // the same stream code over IPv6: once is enough
					nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
						s1, s2 := streamPair(t, ca, cb, false)
						return s1, s2, func() { s1.Close(); s2.Close() }, nil
					})
				}
				ca.Close()
			})
		}
		t.Run("file", func(t *testing.T) {
			// A pipe of 16 KiB packets, with the same losses: a quarter
			// of the time through two stacks under the race detector.
			sa, sb, da2, db2 := tunnelPairMTU(t, 0.01, 16<<10)
			a, b := newTunnelNode(t, sa, tr, Config{}), newTunnelNode(t, sb, tr, Config{})
			ca, cb := pairAt(t, a, b, tunnelAddr(b, "10.9.0.2"))
			defer func() {
				for _, d := range [][2]*lossyDevice{{da, da2}, {db, db2}} {
					d[1].mu.Lock()
					dropped, swapped := d[1].dropped, d[1].swapped
					d[1].mu.Unlock()
					d[0].mu.Lock()
					d[0].dropped += dropped
					d[0].swapped += swapped
					d[0].mu.Unlock()
				}
			}()
			size := 64 << 20
			if tr == TransportQUIC {
				// The same resource code as over TCP; QUIC's packets,
				// each through both stacks under the race detector, make
				// 64 MiB take longer than the suite can give it.
				size = 8 << 20
			}
			tunnelFile(t, ca, cb, size)
		})
		da.mu.Lock()
		db.mu.Lock()
		t.Logf("pipe dropped %d and reordered %d packets", da.dropped+db.dropped, da.swapped+db.swapped)
		if da.dropped+db.dropped == 0 || da.swapped+db.swapped == 0 {
			t.Error("the pipe neither dropped nor reordered: the test proves nothing")
		}
		db.mu.Unlock()
		da.mu.Unlock()
	})
}

// tunnelFile sends a file of size random bytes from ca to cb and checks
// what arrives.
func tunnelFile(t *testing.T, ca, cb *Conn, size int) {
	src, data := randomFile(t, t.TempDir(), size)
	dst := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type res struct {
		got ReceivedResource
		err error
	}
	ch := make(chan res, 1)
	go func() {
		got, _, err := receiveOne(ctx, cb, dst, nil)
		ch <- res{got, err}
	}()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ca.SendResourceOffer(ctx, ResourceOffer{Name: "big.bin", Size: int64(len(data))}, f, nil); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.got.SHA256 != sha256.Sum256(data) {
		t.Fatal("SHA-256 differs")
	}
	onDisk, _ := os.ReadFile(filepath.Join(dst, "big.bin"))
	if !bytes.Equal(onDisk, data) {
		t.Fatal("file content differs")
	}
}

// A node inside a tunnel alone has no discovery, and its Config says so.
func TestTunnelNoDiscovery(t *testing.T) {
	sa, _, _, _ := tunnelPair(t, 0)
	a := newTunnelNode(t, sa, TransportAuto, Config{})
	if err := a.Browse(ctxT(t), nil); !errors.Is(err, ErrNoDiscovery) {
		t.Fatalf("Browse: %v, want ErrNoDiscovery", err)
	}
	if _, err := a.Connect(ctxT(t), "somepeer"); !errors.Is(err, ErrNoDiscovery) {
		t.Fatalf("Connect by name: %v, want ErrNoDiscovery", err)
	}
	for _, cfg := range []Config{
		{Key: testKey, TunnelWithHost: true},
		{Key: testKey, Tunnel: sa, Proxy: "http://127.0.0.1:1"},
		{Key: testKey, Tunnel: sa, Domain: "example.test", DNSServer: "127.0.0.1:53"},
	} {
		var ce *ConfigError
		if _, err := NewNode(&cfg); !errors.As(err, &ce) {
			t.Errorf("%+v: %v, want a ConfigError", cfg, err)
		}
	}
}

// Two nodes inside a tunnel alone, on stacks joined by a pipe that carries
// multicast (tunnel.Options.Multicast): each advertises over its stack, a
// browses and finds b with b's address inside the tunnel, and connects to
// it by name.
func TestTunnelDiscovery(t *testing.T) {
	pa, pb := tunnel.Pipe()
	var st [2]*tunnel.Stack
	for i, d := range []tunnel.Device{pa, pb} {
		s, err := tunnel.New(d, tunnel.Options{Multicast: true, Addrs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.9.0.%d/24", i+1))}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		st[i] = s
	}
	a := newTunnelNode(t, st[0], TransportAuto, Config{Name: "inside-a"})
	b := newTunnelNode(t, st[1], TransportAuto, Config{Name: "inside-b"})
	ctx := ctxT(t)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan Advert, 1)
	go a.Browse(bctx, func(e BrowseEvent) {
		if e.Kind == Found && e.ID == b.ID() {
			select {
			case seen <- e.Advert:
			default:
			}
		}
	})
	var adv Advert
	select {
	case adv = <-seen:
	case <-ctx.Done():
		t.Fatal("a did not find b by browsing inside the tunnel")
	}
	if adv.Interface != tunnel.InterfaceName || !slices.Contains(adv.Addrs, netip.MustParseAddr("10.9.0.2")) {
		t.Fatalf("found %+v, want b on the stack's interface at 10.9.0.2", adv)
	}
	ca, err := a.Connect(ctx, "inside-b")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sendOne(t, ctx, ca, cb, "found inside the tunnel")
	if host, _, _ := net.SplitHostPort(sendLinkAddr(ca)); host != "10.9.0.1" {
		t.Fatalf("connected from %s, want the stack's 10.9.0.1", host)
	}
}

// newMixedNode starts a node on the host's loopback and on st at once.
func newMixedNode(t testing.TB, st *tunnel.Stack, cfg Config) *Node {
	t.Helper()
	cfg.Tunnel, cfg.TunnelWithHost = st, true
	return newNode(t, cfg)
}

// sendLinkAddr is the local address of c's send link.
func sendLinkAddr(c *Conn) string {
	if l := c.s.SendPath(); l != nil {
		return l.T.LocalAddr().String()
	}
	return ""
}

// A node on host sockets and a userspace stack at once: a peer reached
// both ways is one Conn, and when the path its session runs on breaks (the
// host's or the tunnel's, whichever duplicate resolution kept), the session
// resumes over the other with nothing lost.
func TestTunnelWithHost(t *testing.T) {
	sa, sb, da, db := tunnelPair(t, 0)
	cfg := Config{Transport: TransportTCP, DropTime: 2 * time.Second, HandshakeTimeout: 2 * time.Second}
	a := newMixedNode(t, sa, cfg)
	b := newMixedNode(t, sb, cfg)
	r := relaytest.New(t, b.Addr().String())
	ctx := ctxT(t)
	ca, cb := pairAt(t, a, b, r.Addr())
	sendOne(t, ctx, ca, cb, "over the host")
	ca2, err := a.Connect(ctx, tunnelAddr(b, "10.9.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if ca2 != ca || len(a.Peers()) != 1 || len(b.Peers()) != 1 {
		t.Fatalf("two ways to one peer made %d and %d Conns (same Conn: %v)", len(a.Peers()), len(b.Peers()), ca2 == ca)
	}
	waitOneLink(t, ca)
	waitOneLink(t, cb)
	sendOne(t, ctx, ca, cb, "over the one link left")
	before, _, _ := net.SplitHostPort(sendLinkAddr(ca))
	var want []string
	for i := range 40 {
		if i == 20 {
			if before == "10.9.0.1" {
				// The tunnel goes silent both ways.
				for _, d := range []*lossyDevice{da, db} {
					d.mu.Lock()
					d.loss = 1
					d.mu.Unlock()
				}
			} else {
				r.Cut()
			}
		}
		m := fmt.Sprintf("message %d", i)
		if err := ca.SendMessage(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	for _, w := range want {
		got, err := cb.ReceiveMessage(ctx)
		if err != nil || string(got) != w {
			t.Fatalf("received %q, %v; want %q", got, err, w)
		}
	}
	sendOne(t, ctx, cb, ca, "and back")
	after, _, _ := net.SplitHostPort(sendLinkAddr(ca))
	t.Logf("the session moved from %s to %s", before, after)
	if (before == "10.9.0.1") == (after == "10.9.0.1") {
		t.Fatalf("the session ran from %s before the cut and from %s after: it did not move", before, after)
	}
}

var _ Tunnel = (*tunnel.Stack)(nil)

// sendLinkPeer is the peer's address on c's send link (a QUIC link on
// the stack has no local address but its port).
func sendLinkPeer(c *Conn) string {
	if l := c.s.SendPath(); l != nil {
		h, _, _ := net.SplitHostPort(l.T.RemoteAddr().String())
		return h
	}
	return ""
}

// Over QUIC, a session moves from the host's path to the tunnel's and back
// (or the other way round, from whichever duplicate resolution kept): each
// time the path it runs on goes silent, it resumes over the other, healed
// meanwhile, with nothing lost or duplicated.
func TestTunnelWithHostMovesQUIC(t *testing.T) {
	sa, sb, da, db := tunnelPair(t, 0)
	cfg := Config{Transport: TransportQUIC, DropTime: 2 * time.Second, HandshakeTimeout: 2 * time.Second}
	a, b := newMixedNode(t, sa, cfg), newMixedNode(t, sb, cfg)
	r := relaytest.NewUDP(t, b.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca, cb := pairAt(t, a, b, r.Addr())
	sendOne(t, ctx, ca, cb, "over the host")
	ca2, err := a.Connect(ctx, tunnelAddr(b, "10.9.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if ca2 != ca || len(a.Peers()) != 1 || len(b.Peers()) != 1 {
		t.Fatalf("two ways to one peer made %d and %d Conns (same Conn: %v)", len(a.Peers()), len(b.Peers()), ca2 == ca)
	}
	waitOneLink(t, ca)
	waitOneLink(t, cb)
	tunnelLoss := func(loss float64) {
		for _, d := range []*lossyDevice{da, db} {
			d.mu.Lock()
			d.loss = loss
			d.mu.Unlock()
		}
	}
	var moves []string
	for round := range 2 {
		before := sendLinkPeer(ca)
		var want []string
		for i := range 20 {
			if i == 10 { // the path in use goes silent both ways
				if before == "10.9.0.2" {
					tunnelLoss(1)
				} else {
					r.Cut()
				}
			}
			m := fmt.Sprintf("round %d, message %d", round, i)
			if err := ca.SendMessage(ctx, []byte(m)); err != nil {
				t.Fatal(err)
			}
			want = append(want, m)
		}
		for _, w := range want {
			got, err := cb.ReceiveMessage(ctx)
			if err != nil || string(got) != w {
				t.Fatalf("received %q, %v; want %q", got, err, w)
			}
		}
		// Nothing duplicated: the next message is the next one sent.
		sendOne(t, ctx, ca, cb, fmt.Sprint("end of round ", round))
		sendOne(t, ctx, cb, ca, fmt.Sprint("and back, round ", round))
		after := sendLinkPeer(ca)
		if (before == "10.9.0.2") == (after == "10.9.0.2") {
			t.Fatalf("round %d: the session ran to %s before the cut and to %s after: it did not move", round, before, after)
		}
		moves = append(moves, before+" -> "+after)
		// The silent path comes back, for the move back.
		tunnelLoss(0)
		r.Heal()
	}
	t.Logf("the session moved %v", moves)
}

// Over QUIC too, a peer reached over the host's sockets and over the
// tunnel is one Conn, and the session goes on over the link kept.
func TestTunnelWithHostQUIC(t *testing.T) {
	sa, sb, _, _ := tunnelPair(t, 0)
	cfg := Config{Transport: TransportQUIC}
	a, b := newMixedNode(t, sa, cfg), newMixedNode(t, sb, cfg)
	ctx := ctxT(t)
	ca, cb := pair(t, a, b)
	sendOne(t, ctx, ca, cb, "over the host")
	ca2, err := a.Connect(ctx, tunnelAddr(b, "10.9.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if ca2 != ca || len(a.Peers()) != 1 || len(b.Peers()) != 1 {
		t.Fatalf("two ways to one peer made %d and %d Conns (same Conn: %v)", len(a.Peers()), len(b.Peers()), ca2 == ca)
	}
	waitOneLink(t, ca)
	waitOneLink(t, cb)
	for i := range 20 {
		sendOne(t, ctx, ca, cb, fmt.Sprint("message ", i))
		sendOne(t, ctx, cb, ca, fmt.Sprint("answer ", i))
	}
	sendUntil(t, ca, cb, "datagram")
}
