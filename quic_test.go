package nearnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/quict"
	"github.com/nearnet/nearnet/internal/wire"
)

// transports are the transports every connection, message, stream,
// datagram and resource test runs over, with one body (as yamux runs each
// test over pipe, TCP and TLS).
var transports = []Transport{TransportTCP, TransportQUIC}

func forEachTransport(t *testing.T, body func(t *testing.T, tr Transport)) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) { body(t, tr) })
	}
}

// newNodeOn is newNode with the node on transport tr only.
func newNodeOn(t testing.TB, tr Transport, cfg Config) *Node {
	t.Helper()
	cfg.Transport = tr
	return newNode(t, cfg)
}

// transportOf says which transport c's current link runs over.
func transportOf(c *Conn) Transport {
	if l := c.s.SendPath(); l != nil {
		if l.T.LocalAddr().Network() == "udp" {
			return TransportQUIC
		}
	}
	return TransportTCP
}

func TestTransportIsTheOneConfigured(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		if transportOf(ca) != tr || transportOf(cb) != tr {
			t.Fatalf("connected over %v/%v, want %v", transportOf(ca), transportOf(cb), tr)
		}
		wantNet := map[Transport]string{TransportTCP: "tcp", TransportQUIC: "udp"}[tr]
		if got := ca.Peer().Addr.Network(); got != wantNet {
			t.Fatalf("peer address network %q, want %q", got, wantNet)
		}
	})
}

// Auto listens on both transports on one port number and dials by
// preference, falling back to the other.
func TestTransportAutoPreferenceAndFallback(t *testing.T) {
	both := newNode(t, Config{})
	tcpAddr, _ := both.Addr().(*net.TCPAddr)
	if tcpAddr == nil {
		t.Fatalf("auto node address %v is not TCP", both.Addr())
	}
	both.mu.Lock()
	udpPort := both.listeners[1].Addr().(*net.UDPAddr).Port
	both.mu.Unlock()
	if udpPort != tcpAddr.Port {
		t.Fatalf("QUIC on port %d, TCP on %d: want one port", udpPort, tcpAddr.Port)
	}
	tcpOnly := newNodeOn(t, TransportTCP, Config{})
	quicOnly := newNodeOn(t, TransportQUIC, Config{})
	cases := []struct {
		name   string
		dialer Config
		target *Node
		want   Transport
	}{
		{"prefer-tcp", Config{}, both, TransportTCP},
		{"prefer-quic", Config{PreferQUIC: true}, both, TransportQUIC},
		{"tcp-falls-back-to-quic", Config{}, quicOnly, TransportQUIC},
		// QUIC to a port nobody answers on waits for the handshake
		// timeout: keep it short.
		{"quic-falls-back-to-tcp", Config{PreferQUIC: true, HandshakeTimeout: 500 * time.Millisecond}, tcpOnly, TransportTCP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newNode(t, tc.dialer)
			c, err := d.Connect(ctxT(t), tc.target.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if got := transportOf(c); got != tc.want {
				t.Fatalf("dialed %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTransportConfigValidation(t *testing.T) {
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{Key: testKey, Transport: Transport(7)}, "Config.Transport"},
		{Config{Key: testKey, Transport: TransportTCP, PreferQUIC: true}, "Config.PreferQUIC"},
		{Config{Key: testKey, Transport: TransportQUIC, PreferQUIC: true}, "Config.PreferQUIC"},
		{Config{Key: testKey, Transport: TransportQUIC, Proxy: "socks5://127.0.0.1:1"}, "Config.Transport"},
	}
	for _, tc := range cases {
		_, err := NewNode(&tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: got %v, want a ConfigError for %s", tc.cfg, err, tc.field)
		}
	}
	for _, s := range []string{"auto", "tcp", "quic"} {
		if tr, err := ParseTransport(s); err != nil || tr.String() != s {
			t.Errorf("ParseTransport(%q) = %v, %v", s, tr, err)
		}
	}
	if _, err := ParseTransport("udp"); err == nil {
		t.Error("ParseTransport accepted udp")
	}
}

// A wrong key over QUIC is reported on both sides as a key mismatch
// (the close code travels in the close frame and in CONNECTION_CLOSE).
func TestQUICRefusalCodeReachesDialer(t *testing.T) {
	b := newNodeOn(t, TransportQUIC, Config{Admit: func(context.Context, Peer) error { return errors.New("not today") }})
	a := newNodeOn(t, TransportQUIC, Config{})
	_, err := a.Connect(ctxT(t), b.Addr().String())
	var re *RejectedError
	if !errors.As(err, &re) || re.Reason != "not today" {
		t.Fatalf("got %v, want the admission hook's reason", err)
	}
}

// Connections on both transports between the same two nodes, opened at
// the same moment from both sides, end as one Conn, with every message.
func TestSimultaneousOpenAcrossTransports(t *testing.T) {
	const rounds, msgs = 10, 100
	for r := range rounds {
		t.Run(fmt.Sprint("round", r), func(t *testing.T) {
			a := newNode(t, Config{PreferQUIC: true})
			b := newNode(t, Config{})
			drainAccept(t, a)
			drainAccept(t, b)
			ctx := ctxT(t)
			var wg sync.WaitGroup
			conns := make([]*Conn, 2)
			for i, pair := range [][2]*Node{{a, b}, {b, a}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := pair[0].Connect(ctx, pair[1].Addr().String())
					if err != nil {
						t.Error(err)
						return
					}
					for k := range msgs {
						if err := c.SendMessage(ctx, fmt.Appendf(nil, "%d#%d", i, k)); err != nil {
							t.Error(err)
							return
						}
					}
					conns[i] = c
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for i, c := range conns {
				for k := range msgs {
					m, err := c.ReceiveMessage(ctx)
					if want := fmt.Sprintf("%d#%d", 1-i, k); err != nil || string(m) != want {
						t.Fatalf("conn %d: got %q %v, want %q", i, m, err, want)
					}
				}
				waitOneLink(t, c)
			}
			la, lb := conns[0].s.SendPath(), conns[1].s.SendPath()
			if la == nil || lb == nil || la.Key() != lb.Key() {
				t.Fatal("the two sides kept different links")
			}
		})
	}
}

// When the receiver keeps up, QUIC datagrams are not lost on loopback:
// the sender sends in windows and waits for each to arrive.
func TestQUICDatagramLoss(t *testing.T) {
	a, b := newNodeOn(t, TransportQUIC, Config{}), newNodeOn(t, TransportQUIC, Config{})
	ca, cb := pair(t, a, b)
	const total, window = 5000, 50
	p := make([]byte, 1200)
	if max := ca.MaxDatagramSize(); max < len(p) {
		t.Fatalf("MaxDatagramSize %d", max)
	}
	got := 0
	for sent := 0; sent < total; sent += window {
		for range window {
			if err := ca.SendDatagram(p); err != nil {
				t.Fatal(err)
			}
		}
		for got < sent+window {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cb.ReceiveDatagram(ctx)
			cancel()
			if err != nil {
				break // the rest of this window is lost
			}
			got++
		}
	}
	if lost := total - got; lost*100 > total {
		t.Fatalf("%d of %d datagrams lost", lost, total)
	}
	s := ca.DatagramStats()
	if s.Sent != total || cb.DatagramStats().Received != uint64(got) {
		t.Fatalf("stats: sent %+v received %+v", s, cb.DatagramStats())
	}
}

// A node offering both transports advertises "_nearnet._tcp" and
// "_nearnet._udp"; a QUIC-only node browses the latter and connects.
func TestDiscoveryAdvertisesBothTransports(t *testing.T) {
	lo := loopbackName(t)
	both := newAdvertised(t, Config{Key: testKey, Interfaces: []string{lo}})
	ctx := ctxT(t)
	seen := func(d *Node) Advert {
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var found Advert
		d.Browse(bctx, func(e BrowseEvent) {
			if e.Kind == Found && e.ID == both.ID() && found.ID.IsZero() {
				found = e.Advert
				cancel()
			}
		})
		if found.ID.IsZero() {
			t.Fatal("the node was not found")
		}
		return found
	}
	qd, err := NewNode(&Config{Key: testKey, Interfaces: []string{lo}, Transport: TransportQUIC})
	if err != nil {
		t.Fatal(err)
	}
	defer qd.Close()
	a := seen(qd)
	if a.Service != "_nearnet._udp" || len(a.Transports) != 2 {
		t.Fatalf("QUIC browser saw %+v", a)
	}
	c, err := qd.ConnectAdvert(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if transportOf(c) != TransportQUIC {
		t.Fatal("not connected over QUIC")
	}
	td, err := NewNode(&Config{Key: testKey, Interfaces: []string{lo}, Transport: TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	defer td.Close()
	if a := seen(td); a.Service != "_nearnet._tcp" {
		t.Fatalf("TCP browser saw %+v", a)
	}
}

func loopbackName(t *testing.T) string {
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 && ifi.Flags&net.FlagUp != 0 {
			return ifi.Name
		}
	}
	t.Skip("no loopback interface")
	return ""
}

// newAdvertised starts a node that listens and advertises.
func newAdvertised(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := NewNode(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Listen(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// A peer that goes silent is noticed by QUIC's idle timeout, as TCP
// keepalive notices it on the TCP transport: the Conn fails, not hangs.
func TestQUICAbortedPeerFailsConn(t *testing.T) {
	a, b := newNodeOn(t, TransportQUIC, Config{}), newNodeOn(t, TransportQUIC, Config{})
	ca, cb := pair(t, a, b)
	cb.Abort()
	_, err := ca.ReceiveMessage(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != wire.CloseAbnormal {
		t.Fatalf("got %v, want the abort's close code", err)
	}
	if _, ok := errorsAs[*quict.CloseError](err); ok {
		t.Fatal("a quict error leaked out")
	}
}
