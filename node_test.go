package nearnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/proxy"
	"github.com/nearnet/nearnet/security"
)

var testKey = func() *security.Key { k, _ := security.GenerateKey(); return &k }()

// newNode starts a hidden node on loopback (no discovery) and closes it at
// the end of the test.
func newNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	if cfg.Key == nil && cfg.Security == SecurityAuto && cfg.Trust == nil && cfg.KnownPeersFile == "" {
		cfg.Key = testKey
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	cfg.Hidden = true
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

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair connects a to b and returns both ends.
func pair(t testing.TB, a, b *Node) (ca, cb *Conn) {
	t.Helper()
	return pairAt(t, a, b, b.Addr().String())
}

// sendOne sends msg from one end and checks that the other receives it.
func sendOne(t testing.TB, ctx context.Context, from, to *Conn, msg string) {
	t.Helper()
	if err := from.SendMessage(ctx, []byte(msg)); err != nil {
		t.Fatalf("sending %q: %v", msg, err)
	}
	if m, err := to.ReceiveMessage(ctx); err != nil || string(m) != msg {
		t.Fatalf("sent %q, received %q, %v", msg, m, err)
	}
}

// pairAt is pair with a dialing addr, which leads to b (a relay).
func pairAt(t testing.TB, a, b *Node, addr string) (ca, cb *Conn) {
	t.Helper()
	ctx := ctxT(t)
	ca, err := a.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	cb, err = b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cb
}

func TestMessagesKeepBoundariesAndOrder(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		fp := func(n *Node) []security.Fingerprint { return []security.Fingerprint{n.Fingerprint()} }
		idA, _ := security.NewIdentity()
		idB, _ := security.NewIdentity()
		modes := map[string][2]Config{
			"psk":  {{}, {}},
			"none": {{Security: SecurityNone}, {Security: SecurityNone}},
			"pinned": {
				{Identity: idA, Trust: []security.Fingerprint{idB.Fingerprint()}},
				{Identity: idB, Trust: []security.Fingerprint{idA.Fingerprint()}},
			},
		}
		_ = fp
		for name, cfgs := range modes {
			t.Run(name, func(t *testing.T) {
				a, b := newNodeOn(t, tr, cfgs[0]), newNodeOn(t, tr, cfgs[1])
				ca, cb := pair(t, a, b)
				if ca.Peer().ID != b.ID() || cb.Peer().ID != a.ID() {
					t.Fatalf("peers: %v %v", ca.Peer().ID, cb.Peer().ID)
				}
				ctx := ctxT(t)
				sizes := []int{0, 1, 125, 126, 65535, 65536, 1 << 20, DefaultMaxMessageSize}
				go func() {
					for i, n := range sizes {
						m := bytes.Repeat([]byte{byte(i)}, n)
						if err := ca.SendMessage(ctx, m); err != nil {
							t.Error(err)
						}
					}
				}()
				for i, n := range sizes {
					m, err := cb.ReceiveMessage(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if len(m) != n || (n > 0 && (m[0] != byte(i) || m[n-1] != byte(i))) {
						t.Fatalf("message %d: got %d bytes, want %d", i, len(m), n)
					}
				}
				// And back the other way.
				sendOne(t, ctx, cb, ca, "pong")
			})
		}
	})
}

func TestKeyMismatchFailsBothSides(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		other, _ := security.GenerateKey()
		rejected := make(chan error, 1)
		b := newNodeOn(t, tr, Config{OnReject: func(_ net.Addr, err error) { rejected <- err }})
		a := newNodeOn(t, tr, Config{Key: &other})
		start := time.Now()
		_, err := a.Connect(ctxT(t), b.Addr().String())
		if !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("dialer: got %v, want ErrKeyMismatch", err)
		}
		if !strings.Contains(err.Error(), "key") {
			t.Errorf("dialer's error does not mention the key: %v", err)
		}
		select {
		case err := <-rejected:
			if !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("listener: got %v, want ErrKeyMismatch", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("listener never reported the mismatch")
		}
		t.Logf("mismatch detected on both sides after %v", time.Since(start))
	})
}

func TestPinnedIdentities(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		idA, _ := security.NewIdentity()
		idB, _ := security.NewIdentity()
		stranger, _ := security.NewIdentity()
		rejected := make(chan error, 10)
		b := newNodeOn(t, tr, Config{Identity: idB, Trust: []security.Fingerprint{idA.Fingerprint()},
			OnReject: func(_ net.Addr, err error) { rejected <- err }})

		// The dialer pins someone else: it refuses the listener, and tells it.
		a1 := newNodeOn(t, tr, Config{Identity: idA, Trust: []security.Fingerprint{stranger.Fingerprint()}})
		_, err := a1.Connect(ctxT(t), b.Addr().String())
		var up *security.UntrustedPeerError
		if !errors.As(err, &up) || !strings.Contains(err.Error(), idB.Fingerprint().String()) {
			t.Fatalf("dialer pinning a stranger: got %v", err)
		}
		var rej *RejectedError
		if err := <-rejected; !errors.As(err, &rej) || rej.Code != wire.CloseUntrusted || !strings.Contains(err.Error(), "does not trust this listener") {
			t.Fatalf("listener refused by the dialer saw %v", err)
		}

		// The listener does not trust the dialer: the dialer is told why.
		a2 := newNodeOn(t, tr, Config{Identity: stranger, Trust: []security.Fingerprint{idB.Fingerprint()}})
		_, err = a2.Connect(ctxT(t), b.Addr().String())
		if !errors.As(err, &rej) || rej.Code != wire.CloseUntrusted || !strings.Contains(rej.Reason, stranger.Fingerprint().String()) {
			t.Fatalf("untrusted dialer: got %v", err)
		}

		// Both pinned: works.
		a3 := newNodeOn(t, tr, Config{Identity: idA, Trust: []security.Fingerprint{idB.Fingerprint()}})
		c, err := a3.Connect(ctxT(t), b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if c.Peer().Fingerprint != idB.Fingerprint() {
			t.Fatalf("peer fingerprint %v", c.Peer().Fingerprint)
		}
	})
}

func TestAdmissionHook(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		var mu sync.Mutex // the hook runs on the listener's goroutine
		var seen Peer
		b := newNodeOn(t, tr, Config{Admit: func(_ context.Context, p Peer) error {
			mu.Lock()
			seen = p
			mu.Unlock()
			if p.Meta["role"] != "player" {
				return errors.New("only players may join")
			}
			return nil
		}})
		a := newNodeOn(t, tr, Config{Name: "spectator", Metadata: map[string]string{"role": "spectator"}})
		_, err := a.Connect(ctxT(t), b.Addr().String())
		var rej *RejectedError
		if !errors.As(err, &rej) || rej.Reason != "only players may join" {
			t.Fatalf("got %v, want a RejectedError with the hook's reason", err)
		}
		mu.Lock()
		got := seen
		mu.Unlock()
		if got.ID != a.ID() || got.Name != "spectator" || got.Fingerprint != a.Fingerprint() {
			t.Fatalf("hook saw %+v", got)
		}
		p := newNodeOn(t, tr, Config{Metadata: map[string]string{"role": "player"}})
		if _, err := p.Connect(ctxT(t), b.Addr().String()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMessageTooLarge(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a := newNodeOn(t, tr, Config{MaxMessageSize: 1 << 20})
		b := newNodeOn(t, tr, Config{MaxMessageSize: 1000})
		ca, cb := pair(t, a, b)
		ctx := ctxT(t)
		if err := cb.SendMessage(ctx, make([]byte, 1001)); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("local check: got %v", err)
		}
		// The local refusal left the connection intact.
		sendOne(t, ctx, cb, ca, "still here")
		// a does not know b's limit: b closes with 1009, after delivering what came before.
		ca.SendMessage(ctx, []byte("before"))
		ca.SendMessage(ctx, make([]byte, 5000))
		if m, err := cb.ReceiveMessage(ctx); err != nil || string(m) != "before" {
			t.Fatalf("message before the oversized one: %q %v", m, err)
		}
		if _, err := cb.ReceiveMessage(ctx); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("receiver: got %v", err)
		}
		if _, err := ca.ReceiveMessage(ctx); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("sender: got %v, want the peer's 1009 close", err)
		}
	})
}

func TestBackPressure(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		const buf = 64 << 10
		a := newNodeOn(t, tr, Config{SendBuffer: buf})
		b := newNodeOn(t, tr, Config{ReceiveBuffer: buf})
		ca, cb := pair(t, a, b)
		msg := make([]byte, 4096)
		sent := 0
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := ca.SendMessage(ctx, msg)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sent++
			if sent > 100000 { // 400 MiB: nothing holds the sender back
				t.Fatal("SendMessage never blocked on a peer that does not read")
			}
		}
		t.Logf("sender blocked after %d KiB with a %d KiB send and receive buffer", sent*4, buf>>10)
		// Everything queued arrives once the reader reads.
		ctx := ctxT(t)
		for i := 0; i < sent; i++ {
			if _, err := cb.ReceiveMessage(ctx); err != nil {
				t.Fatalf("message %d of %d: %v", i, sent, err)
			}
		}
	})
}

func TestCloseDeliversEverything(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		ctx := ctxT(t)
		const n = 2000
		for i := 0; i < n; i++ {
			if err := ca.SendMessage(ctx, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		closed := make(chan error, 1)
		go func() { closed <- ca.Close() }()
		for i := 0; i < n; i++ {
			m, err := cb.ReceiveMessage(ctx)
			if err != nil || string(m) != fmt.Sprint(i) {
				t.Fatalf("message %d: %q %v", i, m, err)
			}
		}
		if _, err := cb.ReceiveMessage(ctx); err != io.EOF {
			t.Fatalf("after the last message: %v, want io.EOF", err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if s, _ := cb.State(); s.Kind != StateCancelled {
			t.Fatalf("receiver state %v", s)
		}
		if err := ca.SendMessage(ctx, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("send after close: %v", err)
		}
	})
}

func TestAbortIsSeenByPeer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		ca.Abort()
		_, err := cb.ReceiveMessage(ctxT(t))
		if err == nil || err == io.EOF {
			t.Fatalf("got %v, want a failure", err)
		}
		s, _ := cb.State()
		if s.Kind != StateFailed {
			t.Fatalf("state %v", s)
		}
	})
}

func TestStatesAreObservable(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		var mu sync.Mutex
		var seen []StateKind
		a := newNodeOn(t, tr, Config{OnStateChange: func(_ *Conn, s State) {
			mu.Lock()
			seen = append(seen, s.Kind)
			mu.Unlock()
		}})
		b := newNodeOn(t, tr, Config{})
		ca, _ := pair(t, a, b)
		s, changed := ca.State()
		if s.Kind != StateReady {
			t.Fatalf("state %v", s)
		}
		ca.Close()
		<-changed
		if s, _ := ca.State(); s.Kind != StateCancelled {
			t.Fatalf("after Close: %v", s)
		}
		// Callbacks run on the Conn's event goroutine: wait for both.
		waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 2 })
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(seen) != "[ready cancelled]" {
			t.Fatalf("OnStateChange saw %v", seen)
		}
	})
}

// A peer that speaks garbage after the handshake loses its own connection;
// the others are untouched.
func TestProtocolErrorClosesOnlyThatConnection(t *testing.T) {
	b := newNode(t, Config{Security: SecurityNone})
	good := newNode(t, Config{Security: SecurityNone})
	cg, cbg := pair(t, good, b)

	raw, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	key := wire.NewKey([16]byte{1})
	hello, _ := wire.AppendHello(nil, &wire.Hello{Version: 1, Peer: NewPeerID().String(), Name: "bad"})
	buf := wire.AppendUpgradeRequest(nil, "x", key)
	mk := [4]byte{1, 2, 3, 4}
	buf = wire.AppendHeader(buf, true, wire.OpBinary, len(hello), &mk)
	start := len(buf)
	buf = append(buf, hello...)
	wire.Mask(mk, 0, buf[start:])
	buf = append(buf, 0xFF, 0xFF, 0xFF) // not a frame
	raw.Write(buf)
	cbad, err := b.Accept(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cbad.ReceiveMessage(ctxT(t)); err == nil {
		t.Fatal("garbage produced a message")
	} else if _, ok := errorsAs[*ProtocolError](err); !ok {
		t.Fatalf("got %v, want a ProtocolError", err)
	}
	// The raw peer got a 1002 close frame with a reason before the TCP close.
	got, _ := io.ReadAll(raw)
	if !bytes.Contains(got, []byte{0x03, 0xEA}) {
		t.Fatalf("no 1002 close frame in %q", got)
	}
	ctx := ctxT(t)
	sendOne(t, ctx, cg, cbg, "fine")
}

func TestConfigRejectsBadValues(t *testing.T) {
	k := testKey
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Config.Security"},
		{Config{Key: k, Service: "_bad_name._tcp"}, "Config.Service"},
		{Config{Key: k, Service: "_nearnet._udp"}, "Config.Service"},
		{Config{Key: k, TXT: map[string]string{"x": strings.Repeat("v", 300)}}, "Config.TXT"},
		{Config{Key: k, TXT: map[string]string{"id": "mine"}}, "Config.TXT"},
		{Config{Key: k, HandshakeTimeout: -time.Second}, "Config.HandshakeTimeout"},
		{Config{Key: k, CloseTimeout: -1}, "Config.CloseTimeout"},
		{Config{Key: k, MaxMessageSize: -5}, "Config.MaxMessageSize"},
		{Config{Key: k, MaxMessageSize: 2 << 30}, "Config.MaxMessageSize"},
		{Config{Key: k, SendBuffer: 10}, "Config.SendBuffer"},
		{Config{Key: k, MemoryBudget: 32 << 20}, "Config.MemoryBudget"}, // under 16 × 4 MiB
		{Config{Key: k, MemoryBudget: 1}, "Config.MemoryBudget"},
		{Config{Key: k, Security: SecurityMode(42)}, "Config.Security"},
		{Config{Key: k, Security: SecurityNone}, "Config.Security"},
		{Config{Key: k, Trust: []security.Fingerprint{{1}}}, "Config.Security"},
		{Config{Security: SecurityPSK}, "Config.Key"},
		{Config{Key: &security.Key{}}, "Config.Key"},
		{Config{Key: k, TrustOnFirstUse: true}, "Config.TrustOnFirstUse"},
		{Config{Key: k, Name: strings.Repeat("n", 64)}, "Config.Name"},
		{Config{Key: k, ListenAddr: "nope"}, "Config.ListenAddr"},
		{Config{Key: k, ListenAddr: ":99999"}, "Config.ListenAddr"},
		// Contradictory combinations: one field would be ignored.
		{Config{Key: k, Hidden: true, TXT: map[string]string{"x": "y"}}, "Config.TXT"},
		{Config{Key: k, DisableDatagrams: true, DatagramIdleTimeout: time.Minute}, "Config.DatagramIdleTimeout"},
		{Config{Key: k, PreferQUIC: true, Proxy: "socks5://127.0.0.1:1"}, "Config.PreferQUIC"},
		{Config{Key: k, PreferQUIC: true, ProxyFromEnvironment: true}, "Config.PreferQUIC"},
		// An all-zero key: a key file read with its error ignored.
		{Config{Key: &security.Key{}}, "Config.Key"},
		{Config{Security: SecurityPSK, Key: &security.Key{}}, "Config.Key"},
	}
	for _, c := range cases {
		_, err := NewNode(&c.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%+v: got %v, want a ConfigError for %s", c.cfg, err, c.field)
		}
	}
	if _, err := NewNode(nil); err == nil {
		t.Error("nil Config accepted")
	}
	if _, err := NewNode(&Config{Key: &security.Key{}}); err == nil || strings.Contains(err.Error(), strings.Repeat("0", 64)) {
		t.Errorf("all-zero key: %v; want an error that does not print the key", err)
	}
	// Each half of a rejected combination is fine alone.
	for _, cfg := range []Config{
		{Key: k, Hidden: true}, {Key: k, TXT: map[string]string{"x": "y"}},
		{Key: k, DisableDatagrams: true}, {Key: k, DatagramIdleTimeout: time.Minute},
		{Key: k, PreferQUIC: true}, {Key: k, Proxy: "socks5://127.0.0.1:1"}, {Key: k, ProxyFromEnvironment: true},
	} {
		if _, err := NewNode(&cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	// The caller's Config is not changed.
	cfg := Config{Key: k}
	if _, err := NewNode(&cfg); err != nil || cfg.Security != SecurityAuto || cfg.Service != "" {
		t.Fatalf("NewNode changed the Config: %+v %v", cfg, err)
	}
}

func TestPreparingThenReady(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		var mu sync.Mutex
		var seen []string
		a := newNodeOn(t, tr, Config{OnStateChange: func(c *Conn, s State) {
			mu.Lock()
			seen = append(seen, s.Kind.String())
			mu.Unlock()
		}})
		b := newNodeOn(t, tr, Config{})
		c, err := a.ConnectAdvert(ctxT(t), advertOfNode(b))
		if err != nil {
			t.Fatal(err)
		}
		if c.Peer().ID != b.ID() || c.Peer().Fingerprint != b.Fingerprint() {
			t.Fatalf("peer %+v", c.Peer())
		}
		// A failed attempt ends in failed, with the reason.
		other, _ := security.GenerateKey()
		x := newNodeOn(t, tr, Config{Key: &other})
		if _, err := a.ConnectAdvert(ctxT(t), advertOfNode(x)); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("got %v", err)
		}
		waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 4 })
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(seen, " "); got != "preparing ready preparing failed" {
			t.Fatalf("states seen: %s", got)
		}
	})
}

func TestPeerIDPersistence(t *testing.T) {
	path := t.TempDir() + "/id"
	id1, err := LoadOrCreatePeerID(path)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := LoadOrCreatePeerID(path)
	if err != nil || id2 != id1 {
		t.Fatalf("reloaded %v %v, want %v", id2, err, id1)
	}
	id3, err := RotatePeerID(path)
	if err != nil || id3 == id1 {
		t.Fatalf("rotated to %v %v", id3, err)
	}
	if id4, _ := LoadOrCreatePeerID(path); id4 != id3 {
		t.Fatalf("after rotation the file holds %v, want %v", id4, id3)
	}
	os.WriteFile(path, []byte("not an id"), 0o600)
	if _, err := LoadOrCreatePeerID(path); err == nil {
		t.Fatal("a corrupt peer ID file was accepted")
	}
}

// Several goroutines receiving from one Conn get every message exactly once.
func TestConcurrentReceivers(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		ctx := ctxT(t)
		const n = 3000
		var mu sync.Mutex
		seen := make(map[string]int)
		var wg sync.WaitGroup
		for r := 0; r < 4; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					m, err := cb.ReceiveMessage(ctx)
					if err != nil {
						return // io.EOF after the sender's Close
					}
					mu.Lock()
					seen[string(m)]++
					mu.Unlock()
				}
			}()
		}
		for i := 0; i < n; i++ {
			if err := ca.SendMessage(ctx, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if i%100 == 0 {
				time.Sleep(time.Millisecond) // let the receivers go idle now and then
			}
		}
		if err := ca.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("received %d distinct messages, want %d", len(seen), n)
		}
		for m, k := range seen {
			if k != 1 {
				t.Fatalf("message %s received %d times", m, k)
			}
		}
	})
}

func TestConfigProxyErrorsHidePassword(t *testing.T) {
	for _, raw := range []string{"ftp://user:s3cret@proxy:21", "http://user:s3cret@[bad", "user:s3cret@proxy:8080"} {
		_, err := NewNode(&Config{Key: testKey, Proxy: raw})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "Config.Proxy" {
			t.Fatalf("%q: got %v, want a ConfigError for Config.Proxy", raw, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("%q: the error shows the password: %v", raw, err)
		}
	}
	if _, err := NewNode(&Config{Key: testKey, Proxy: "socks5://user:pw@127.0.0.1:1080"}); err != nil {
		t.Fatal(err)
	}
}

// A proxy that is down is reported as such, not as a timeout, without
// the password.
func TestConnectThroughDeadProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	b := newNode(t, Config{})
	a := newNode(t, Config{Proxy: "http://user:s3cret@" + dead})
	_, err = a.Connect(ctxT(t), b.Addr().String())
	var pe *proxy.Error
	if !errors.As(err, &pe) || pe.Kind != proxy.ProxyUnreachable {
		t.Fatalf("got %v, want a proxy.Error of kind ProxyUnreachable", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

// A stream of small messages shares writes (and TLS records): the writer
// batches what queued while its previous write was in the kernel.
func TestStreamOfMessagesIsBatched(t *testing.T) {
	a, b := newNode(t, Config{}), newNode(t, Config{})
	ca, cb := pair(t, a, b)
	ctx := ctxT(t)
	l := ca.s.SendPath()
	before := session.WriteThroughOf(l.T).(interface{ Writes() int64 }).Writes()
	const n = 20000
	go func() {
		msg := make([]byte, 64)
		for i := 0; i < n; i++ {
			if err := ca.SendMessage(ctx, msg); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		if _, err := cb.ReceiveMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	writes := session.WriteThroughOf(l.T).(interface{ Writes() int64 }).Writes() - before
	t.Logf("%d messages in %d writes", n, writes)
	// Typically ~1 % without the race detector, a quarter with it; one
	// write per message means no batching at all.
	if writes > n/2 {
		t.Fatalf("%d messages took %d writes: the stream was not batched", n, writes)
	}
}

// ReceiveMessage honours its ctx, also while it reads the link itself,
// and the connection stays usable after.
func TestReceiveMessageHonoursCtx(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := cb.ReceiveMessage(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		// One ctx for several receives, then cancelled while blocked.
		loop, stop := context.WithCancel(context.Background())
		for i := 0; i < 3; i++ {
			if err := ca.SendMessage(ctxT(t), []byte("m")); err != nil {
				t.Fatal(err)
			}
			if _, err := cb.ReceiveMessage(loop); err != nil {
				t.Fatal(err)
			}
		}
		time.AfterFunc(50*time.Millisecond, stop)
		if _, err := cb.ReceiveMessage(loop); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want Canceled", err)
		}
		if _, err := cb.ReceiveMessage(loop); !errors.Is(err, context.Canceled) {
			t.Fatalf("with the ctx already done: got %v", err)
		}
		if err := ca.SendMessage(ctxT(t), []byte("after")); err != nil {
			t.Fatal(err)
		}
		if m, err := cb.ReceiveMessage(ctxT(t)); err != nil || string(m) != "after" {
			t.Fatalf("after the cancellations: %q %v", m, err)
		}
	})
}

// TestNodeCloseSaysGoingAway: a node shutting down closes its connections
// with 1001, going away (PROTOCOL.md section 7), and the peer sees a
// graceful end.
func TestNodeCloseSaysGoingAway(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		_, cb := pair(t, a, b)
		a.Close()
		if _, err := cb.ReceiveMessage(ctxT(t)); err != io.EOF {
			t.Fatalf("after the peer's node closed: %v, want io.EOF", err)
		}
		s, _ := cb.State()
		var ce *CloseError
		if s.Kind != StateCancelled || !errors.As(s.Err, &ce) || ce.Code != 1001 {
			t.Fatalf("state %v (%v), want cancelled by close code 1001", s, s.Err)
		}
	})
}
