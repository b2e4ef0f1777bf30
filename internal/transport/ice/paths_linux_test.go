package ice_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/transport/ice/icetest"
	"github.com/nearnet/nearnet/internal/transport/quic"
	"github.com/nearnet/nearnet/security"
)

const turnUser, turnPass = "nearnet", "d2c5e0a1f3b4"

type connAcceptor chan transport.Conn

func (a connAcceptor) HandleConn(c transport.Conn, _ time.Time) { a <- c }
func (a connAcceptor) HandleFailure(net.Addr, error)            {}

func quicTransport(t *testing.T) *quic.Transport {
	id, err := security.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tr := quic.New(quic.Options{
		Server: security.ServerConfig(id, nil), Client: security.ClientConfig(id, nil),
		HandshakeTimeout: 10 * time.Second, DropTime: 10 * time.Second, KeepAliveIdle: time.Second,
	})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// connectPair runs ICE between an agent on host x (controlling) and one on
// host y with the given servers, exchanging their descriptions directly,
// and returns both paths.
func connectPair(t *testing.T, ctx context.Context, x, y *netns.Host, servers []ice.Server) (px, py *ice.Path) {
	t.Helper()
	agent := func(h *netns.Host) *ice.Agent {
		n, err := icetest.NewNet(h)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ice.NewAgent(ice.Config{Servers: servers, Net: n, Logger: testLogger(t, h.Name)})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ax, ay := agent(x), agent(y)
	dx, err := ax.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dy, err := ay.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %q", x.Name, dx.Candidates)
	t.Logf("%s: %q", y.Name, dy.Candidates)
	type res struct {
		p   *ice.Path
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := ay.Connect(ctx, false, dx)
		ch <- res{p, err}
	}()
	px, err = ax.Connect(ctx, true, dy)
	r := <-ch
	if err != nil || r.err != nil {
		ax.Close()
		ay.Close()
		t.Fatalf("ICE between %s and %s: %v / %v", x.Name, y.Name, err, r.err)
	}
	return px, r.p
}

// exchange runs a QUIC connection over the two paths and sends size bytes
// each way on its control stream.
func exchange(t *testing.T, ctx context.Context, px, py *ice.Path, size int) {
	t.Helper()
	tx, ty := quicTransport(t), quicTransport(t)
	acc := make(connAcceptor, 1)
	ln, err := ty.ListenOver(py.Lease(), acc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cx, err := tx.DialOver(ctx, px.Lease(), ice.PeerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cx.End(1000, "")
	want := make([]byte, size)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		_, err := cx.Control().Write(want)
		errc <- err
	}()
	var cy transport.Conn
	select {
	case cy = <-acc:
	case <-ctx.Done():
		t.Fatal("no QUIC connection over the ICE path")
	}
	defer cy.End(1000, "")
	got := make([]byte, size)
	if _, err := io.ReadFull(cy.Control(), got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := cy.Control().Write(want[:1024]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cx.Control(), got[:1024]); err != nil || !bytes.Equal(got[:1024], want[:1024]) {
		t.Fatalf("answer: %v", err)
	}
}

// TestPaths runs ICE between alice (home A) and carol (home B), each
// behind a NAT, with one coturn on the public network for both: a direct
// path when the NATs let hole punching through (coturn relays nothing of
// the data), a relayed one when rb randomises its ports, and TURN over TCP
// when rb lets no UDP out, or TURN over TLS (turns:, coturn's certificate
// from a CA the test makes) when that is the only server.
func TestPaths(t *testing.T) {
	in := netns.NewInternet(t)
	turn := in.StartTURNTLS(t, turnUser, turnPass)
	pub := netns.PublicAddr.String() + ":3478"
	servers := []ice.Server{
		{URL: "stun:" + pub},
		{URL: "turn:" + pub + "?transport=udp", Username: turnUser, Password: turnPass},
		{URL: "turn:" + pub + "?transport=tcp", Username: turnUser, Password: turnPass},
	}
	const size = 4 << 20

	t.Run("wrong-credentials", func(t *testing.T) {
		// A TURN server refusing the credentials is a clear error within
		// seconds, not a hang.
		n, err := icetest.NewNet(in.C)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = ice.OpenMailbox(ctx, ice.Config{Net: n, Servers: []ice.Server{
			{URL: "turn:" + pub + "?transport=udp", Username: turnUser, Password: "wrong"},
		}})
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("got %v, want the server's 401 refusal", err)
		}
		t.Logf("wrong credentials: %v", err)
	})

	t.Run("probe", func(t *testing.T) {
		// Probe names each server's failure: coturn with the right
		// credentials allocates, with wrong ones is a 401, and a STUN
		// server where nothing listens is a timeout, all within seconds.
		n, err := icetest.NewNet(in.C)
		if err != nil {
			t.Fatal(err)
		}
		dead := netns.PublicAddr.String() + ":3479"
		start := time.Now()
		rs, err := ice.Probe(context.Background(), ice.Config{Net: n, Servers: []ice.Server{
			servers[0], servers[1], servers[2],
			{URL: "turn:" + pub, Username: turnUser, Password: "wrong-pass"},
			{URL: "stun:" + dead},
			{URL: "turn:" + dead + "?transport=tcp", Username: turnUser, Password: turnPass},
		}}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		for _, r := range rs {
			t.Logf("%+v", r)
			if r.Err != nil && strings.Contains(r.Err.Error(), turnPass) {
				t.Errorf("%s: the error shows the password: %v", r.URL, r.Err)
			}
		}
		for i, r := range rs[:3] {
			if r.Err != nil || !r.Mapped.IsValid() || r.Mapped.Addr().String() != "10.200.2.2" {
				t.Errorf("server %d: %+v; want it answering, mapping carol to rb's public address", i, r)
			}
			if wantRelay := i > 0; wantRelay != (r.Relayed.Addr() == netip.MustParseAddr(netns.PublicAddr.String())) {
				t.Errorf("server %d: relayed %v; want an allocation on coturn for TURN only", i, r.Relayed)
			}
		}
		if rs[2].Via != "tcp" {
			t.Errorf("TURN over TCP reached by %q", rs[2].Via)
		}
		var se *ice.ServerError
		if r := rs[3]; !errors.As(r.Err, &se) || !errors.Is(r.Err, ice.ErrUnauthorized) || se.URL != r.URL {
			t.Errorf("wrong credentials: %v; want a ServerError wrapping ErrUnauthorized", r.Err)
		}
		var ne net.Error
		if r := rs[4]; !errors.Is(r.Err, ice.ErrNoAnswer) || !errors.As(r.Err, &ne) || !ne.Timeout() {
			t.Errorf("%s: %v; want ErrNoAnswer, a timeout", r.URL, r.Err)
		}
		if r := rs[5]; !errors.Is(r.Err, syscall.ECONNREFUSED) {
			t.Errorf("%s: %v; want the connection refused", r.URL, r.Err)
		}
		if took > 10*time.Second {
			t.Errorf("probing took %v with a 2s timeout", took)
		}
	})

	// TURN over TLS is verified against the system's roots (pion takes no
	// others): SSL_CERT_FILE makes the test's CA this process's only root.
	// Go reads it at the first verification against the system's roots,
	// which is the first turns: gathering of this test binary.
	os.Setenv("SSL_CERT_FILE", turn.CAFile)
	turnsServers := []ice.Server{{URL: "turns:" + netns.PublicAddr.String() + ":5349", Username: turnUser, Password: turnPass}}
	for _, tc := range []struct {
		name    string
		nat     netns.NAT
		kind    ice.Kind
		relay   string // the protocol carol's relay candidate reaches coturn by, when carol's side relays
		servers []ice.Server
	}{
		{"direct", netns.NATKeepPorts, ice.Direct, "", servers},
		{"relayed", netns.NATRandom, ice.Relayed, "", servers},
		{"turn-tcp", netns.NATBlockUDP, ice.Relayed, "tcp", servers},
		{"turns", netns.NATBlockUDP, ice.Relayed, "tls", turnsServers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in.SetNAT(t, in.RB, tc.nat)
			defer in.SetNAT(t, in.RB, netns.NATKeepPorts)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pa, pc := connectPair(t, ctx, in.A, in.C, tc.servers)
			defer pa.Close()
			defer pc.Close()
			before, err := turn.RelayedBytes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			exchange(t, ctx, pa, pc, size)
			after, err := turn.RelayedBytes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ia, ic := pa.Info(), pc.Info()
			t.Logf("alice %+v, carol %+v; coturn relayed %d bytes during the exchange", ia, ic, after-before)
			if ia.Kind != tc.kind || ic.Kind != tc.kind {
				t.Fatalf("path kinds %v / %v, want %v", ia.Kind, ic.Kind, tc.kind)
			}
			if ia.RTT <= 0 && ic.RTT <= 0 {
				t.Errorf("no round-trip time measured on the path")
			}
			switch {
			case tc.kind == ice.Direct && after-before >= size/4:
				t.Errorf("direct path, but coturn relayed %d bytes of the %d sent", after-before, size)
			case tc.kind == ice.Relayed && after-before < size:
				t.Errorf("relayed path, but coturn relayed only %d bytes of the %d sent", after-before, size)
			}
			if tc.relay != "" && ic.Relay != tc.relay {
				t.Errorf("carol's relay goes over %q, want %q", ic.Relay, tc.relay)
			}
		})
	}
}

func testLogger(t *testing.T, name string) *slog.Logger {
	if os.Getenv("NEARNET_ICE_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", name)
}
