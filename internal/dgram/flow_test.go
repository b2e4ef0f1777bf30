package dgram

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	for _, secure := range []bool{true, false} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			p := newPair(t, secure, nil)
			if err := p.b.Send([]byte("too early")); !errors.Is(err, ErrNoPeerAddress) {
				t.Fatalf("listener side Send before the first datagram: %v, want ErrNoPeerAddress", err)
			}
			for i := range 10 {
				msg := []byte(fmt.Sprintf("ping %d", i))
				if err := p.a.Send(msg); err != nil {
					t.Fatal(err)
				}
				if got := recv(t, p.b); !bytes.Equal(got, msg) {
					t.Fatalf("b got %q, want %q", got, msg)
				}
				reply := []byte(fmt.Sprintf("pong %d", i))
				if err := p.b.Send(reply); err != nil {
					t.Fatal(err)
				}
				if got := recv(t, p.a); !bytes.Equal(got, reply) {
					t.Fatalf("a got %q, want %q", got, reply)
				}
			}
			if got, want := p.b.RemoteAddr(), p.ma.LocalAddr(); got != want {
				t.Errorf("listener side learned %s, want %s", got, want)
			}
			// An empty datagram is a datagram.
			if err := p.a.Send(nil); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, p.b); got == nil || len(got) != 0 {
				t.Fatalf("empty datagram arrived as %#v", got)
			}
			sa, sb := p.a.Stats(), p.b.Stats()
			if sa.Sent != 11 || sa.Received != 10 || sb.Sent != 10 || sb.Received != 11 {
				t.Errorf("stats a %+v b %+v", sa, sb)
			}
			if sa.SentBytes != sb.ReceivedBytes || sa.Dropped != (Drops{}) || sb.Dropped != (Drops{}) {
				t.Errorf("stats a %+v b %+v", sa, sb)
			}
			if p.a.Secure() != secure {
				t.Errorf("Secure() = %v", p.a.Secure())
			}
		})
	}
}

// TestMaxSizeLoopback sends the largest payload lo takes and one byte more.
func TestMaxSizeLoopback(t *testing.T) {
	for _, secure := range []bool{true, false} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			p := newPair(t, secure, nil)
			mtu, err := pathMTU(p.mb.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			overhead := SealedOverhead
			if !secure {
				overhead = PlainOverhead
			}
			want := min(mtu, 65535) - 20 - 8 - overhead
			max := p.a.MaxSize()
			if max != want {
				t.Fatalf("MaxSize() = %d, want %d (lo MTU %d)", max, want, mtu)
			}
			big := bytes.Repeat([]byte{0xab}, max)
			if err := p.a.Send(big); err != nil {
				t.Fatalf("Send(MaxSize bytes): %v", err)
			}
			if got := recv(t, p.b); !bytes.Equal(got, big) {
				t.Fatalf("got %d bytes, want %d", len(got), len(big))
			}
			err = p.a.Send(append(big, 0))
			var tl *TooLargeError
			if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || tl.Max != max || tl.Size != max+1 {
				t.Fatalf("Send(MaxSize+1 bytes) = %v, want TooLargeError{%d, %d}", err, max+1, max)
			}
			if st := p.a.Stats(); st.Dropped.TooLarge != 1 || st.Sent != 1 {
				t.Errorf("stats %+v", st)
			}
			// Before the listener side knows its peer, it assumes 1280.
			c := flowsOn(t, p.ma, p.mb, secure)
			if got := c.b.MaxSize(); got != 1280-28-overhead {
				t.Errorf("MaxSize before the peer is known = %d, want %d", got, 1280-28-overhead)
			}
		})
	}
}

// TestHostileInput feeds a secure flow's receiver tampered, replayed,
// truncated, forged and garbage datagrams. Each is dropped and counted, and
// a good datagram sent after them still arrives: since loopback keeps order
// and one goroutine reads, its arrival means all of them were handled.
func TestHostileInput(t *testing.T) {
	ma, mb := listenLoopback(t, nil), listenLoopback(t, nil)
	s := newSniffer(t)
	ka, kb := testKeys(t)
	sa, sb := NewSessionID(), NewSessionID()
	// a sends to the sniffer, which forwards to b's Mux.
	a, err := ma.NewFlow(FlowConfig{LocalSession: sa, RemoteSession: sb, RemoteAddr: s.addr(), Keys: ka})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mb.NewFlow(FlowConfig{LocalSession: sb, RemoteSession: sa, RemoteAddr: ma.LocalAddr(), Keys: kb})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	to := mb.LocalAddr()

	capture := func(payload string) []byte {
		t.Helper()
		if err := a.Send([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		return s.next()
	}
	// expect forwards a fresh good datagram and checks that it is the next
	// one b delivers, then checks the counters.
	expect := func(what string, drops Drops, mux MuxDrops) {
		t.Helper()
		good := capture("marker " + what)
		s.send(good, to)
		if got := recv(t, b); string(got) != "marker "+what {
			t.Fatalf("%s: b delivered %q, want the marker", what, got)
		}
		if got := b.Stats().Dropped; got != drops {
			t.Fatalf("%s: flow drops %+v, want %+v", what, got, drops)
		}
		if got := mb.Stats().Dropped; got != mux {
			t.Fatalf("%s: mux drops %+v, want %+v", what, got, mux)
		}
	}
	var drops Drops
	var mux MuxDrops

	d := capture("hello")
	s.send(d, to)
	if got := recv(t, b); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}

	s.send(d, to) // replayed
	drops.Replay++
	expect("replay", drops, mux)

	// Every single-bit flip of the header, ciphertext and tag fails
	// authentication (or, in the kind byte or session, misses the flow).
	d = capture("tamper me")
	for i := range d {
		for bit := range 8 {
			x := bytes.Clone(d)
			x[i] ^= 1 << bit
			s.send(x, to)
			switch {
			case i == 0:
				if x[0] == kindPlain {
					drops.Auth++ // a plaintext datagram on a secure flow
				} else {
					mux.Malformed++
				}
			case i < 9:
				mux.UnknownSession++
			case i < 17 && binary.BigEndian.Uint64(x[9:17]) <= 1:
				// The packet number became one already accepted (0
				// and 1 were): a replay, caught before decryption.
				drops.Replay++
			default:
				drops.Auth++
			}
		}
	}
	expect("tampered", drops, mux)
	// The original still opens afterwards: failed attempts did not
	// poison the window.
	s.send(d, to)
	if got := recv(t, b); string(got) != "tamper me" {
		t.Fatalf("got %q", got)
	}

	d = capture("truncate me")
	for _, n := range []int{HeaderLen, HeaderLen + 1, SealedOverhead - 1} {
		s.send(d[:n], to)
		drops.Truncated++
	}
	s.send(d[:len(d)-1], to) // the tag cut short: authentication fails
	drops.Auth++
	expect("truncated", drops, mux)

	s.send(nil, to)
	s.send([]byte{kindSealed}, to)
	s.send(bytes.Repeat([]byte{0xff}, 100), to)
	mux.Malformed += 3
	forged := seal(newAEAD(&Key{1}), new(nonceBuf), make([]byte, 0, 64), sb, 1<<40, []byte("forged"))
	s.send(forged, to)
	drops.Auth++
	plain := appendPlain(nil, sb, 1<<41, []byte("plain on a secure flow"))
	s.send(plain, to)
	drops.Auth++
	other := appendPlain(nil, sb+1, 0, []byte("no such session"))
	s.send(other, to)
	mux.UnknownSession++
	expect("garbage", drops, mux)

	// Too old: a datagram 2000 packet numbers below the newest is outside
	// the window. (The sender skips numbers here rather than send 2000.)
	d = capture("old")
	a.nextPN.Add(2000)
	latest := capture("latest")
	s.send(latest, to)
	if got := recv(t, b); string(got) != "latest" {
		t.Fatalf("got %q", got)
	}
	s.send(d, to)
	drops.TooOld++
	expect("too old", drops, mux)
}

// TestInsecureAddress: an insecure flow takes datagrams only from its peer's
// address.
func TestInsecureAddress(t *testing.T) {
	p := newPair(t, false, nil)
	s := newSniffer(t)
	if err := p.a.Send([]byte("first")); err != nil {
		t.Fatal(err)
	}
	recv(t, p.b)
	s.send(appendPlain(nil, p.b.LocalSession(), 1, []byte("spoof")), p.mb.LocalAddr())
	if err := p.a.Send([]byte("second")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, p.b); string(got) != "second" {
		t.Fatalf("got %q", got)
	}
	if got := p.b.Stats().Dropped.Address; got != 1 {
		t.Errorf("Dropped.Address = %d, want 1", got)
	}
	// The insecure flow has no replay protection: the same datagram twice
	// is delivered twice (documented).
	if err := p.b.Send([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	recv(t, p.a)
}

// TestSecureRoaming: the listener side sends to the source of the
// authenticated datagram with the highest packet number; forged, replayed
// or older datagrams from elsewhere do not move it.
func TestSecureRoaming(t *testing.T) {
	ma, mb, mc := listenLoopback(t, nil), listenLoopback(t, nil), listenLoopback(t, nil)
	ka, kb := testKeys(t)
	sa, sb := NewSessionID(), NewSessionID()
	a, err := ma.NewFlow(FlowConfig{LocalSession: sa, RemoteSession: sb, RemoteAddr: mb.LocalAddr(), Keys: ka})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// c is the same peer after its address changed: same keys and
	// sessions, another socket.
	c, err := mc.NewFlow(FlowConfig{LocalSession: sa, RemoteSession: sb, RemoteAddr: mb.LocalAddr(), Keys: ka})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := mb.NewFlow(FlowConfig{LocalSession: sb, RemoteSession: sa, Keys: kb})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	send := func(f *Flow, msg string) {
		t.Helper()
		if err := f.Send([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(msg string, at netip.AddrPort) {
		t.Helper()
		if got := recv(t, b); string(got) != msg {
			t.Fatalf("got %q, want %q", got, msg)
		}
		if got := b.RemoteAddr(); got != at {
			t.Fatalf("after %q the flow sends to %s, want %s", msg, got, at)
		}
	}
	send(a, "a0") // packet number 0
	expect("a0", ma.LocalAddr())

	s := newSniffer(t)
	s.send(seal(newAEAD(&Key{9}), new(nonceBuf), make([]byte, 0, 64), sb, 1000, []byte("forged")), mb.LocalAddr())
	send(c, "c0") // packet number 0 again: a replay
	send(a, "a1")
	expect("a1", ma.LocalAddr())
	send(c, "c1") // packet number 1 again: a replay
	send(c, "c2") // packet number 2: the newest, from mc
	expect("c2", mc.LocalAddr())
	send(b, "to c")
	if got := recv(t, c); string(got) != "to c" {
		t.Fatalf("c got %q", got)
	}
	send(a, "a2") // a replay of c's packet number 2
	send(a, "a3")
	expect("a3", ma.LocalAddr())
	if got := b.Stats().Dropped; got.Auth != 1 || got.Replay != 3 {
		t.Fatalf("drops %+v, want 1 auth and 3 replays", got)
	}
}

// TestSlowReceiver: nobody calls Receive; the sender never blocks, the
// queue holds QueueLen datagrams and the rest are counted as dropped.
func TestSlowReceiver(t *testing.T) {
	cfg := &Config{QueueLen: 16}
	p := newPair(t, true, cfg)
	const n = 5000
	payload := make([]byte, 1200)
	start := time.Now()
	for range n {
		if err := p.a.Send(payload); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("sending %d datagrams took %v", n, d)
	}
	// Wait (boundedly) until b's Mux has read everything that reached its
	// socket: its count stays put for 100ms.
	deadline := time.Now().Add(5 * time.Second)
	for last := uint64(0); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n := p.mb.Stats().Received
		if n == last {
			break
		}
		last = n
	}
	st, ms := p.b.Stats(), p.mb.Stats()
	if st.Received != 16 {
		t.Fatalf("queued %d, want 16 (QueueLen)", st.Received)
	}
	if st.Received+st.Dropped.QueueFull != ms.Received {
		t.Fatalf("flow received %d + dropped %d != mux read %d", st.Received, st.Dropped.QueueFull, ms.Received)
	}
	if st.Dropped.QueueFull == 0 {
		t.Fatal("no datagram counted as dropped for a full queue")
	}
	if q := p.mb.queued.Load(); q != 16*1200 {
		t.Errorf("mux holds %d bytes, want %d", q, 16*1200)
	}
	// The queued ones are the first 16, delivered in order.
	for range 16 {
		recv(t, p.b)
	}
	if q := p.mb.queued.Load(); q != 0 {
		t.Errorf("mux holds %d bytes after draining", q)
	}
	t.Logf("sent %d in %v; sender stats %+v; receiver %+v; mux %+v", n, time.Since(start), p.a.Stats(), st, ms)
}

// TestQueueBytes: the Mux-wide byte budget bounds memory across flows.
func TestQueueBytes(t *testing.T) {
	cfg := &Config{QueueLen: 1000, QueueBytes: 64 << 10}
	ma, mb := listenLoopback(t, cfg), listenLoopback(t, cfg)
	var flows []pair
	for range 4 {
		flows = append(flows, flowsOn(t, ma, mb, true))
	}
	payload := make([]byte, 1000)
	for i := range 40 {
		for _, p := range flows {
			if err := p.a.Send(payload); err != nil {
				t.Fatal(err)
			}
		}
		_ = i
	}
	// A marker on a fresh flow, once the budget is full, is dropped too;
	// wait until the Mux read all 160.
	deadline := time.Now().Add(5 * time.Second)
	for mb.Stats().Received < 160 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var received, dropped uint64
	for _, p := range flows {
		st := p.b.Stats()
		received += st.Received
		dropped += st.Dropped.QueueFull
	}
	if q := mb.queued.Load(); q > 64<<10 {
		t.Fatalf("queued %d bytes, over the 64 KiB budget", q)
	}
	if received != 65 || dropped != 160-65 {
		t.Fatalf("received %d, dropped %d; want 65 and 95 (64 KiB / 1000 bytes)", received, dropped)
	}
	// Closing a flow gives its bytes back.
	flows[0].b.Close()
	for _, p := range flows[1:] {
		for p.b.Stats().Received > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			_, err := p.b.Receive(ctx)
			cancel()
			if err != nil {
				break
			}
		}
	}
	if q := mb.queued.Load(); q != 0 {
		t.Fatalf("queued %d bytes after closing and draining", q)
	}
}

func TestCloseAndExpiry(t *testing.T) {
	cfg := &Config{IdleTimeout: 40 * time.Millisecond}
	p := newPair(t, true, cfg)
	if err := p.a.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	recv(t, p.b)

	// Receive blocked on a, then a closes.
	errc := make(chan error, 1)
	go func() {
		_, err := p.a.Receive(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	p.a.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
	if err := p.a.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := p.a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Its session is free at once.
	f, err := p.ma.NewFlow(FlowConfig{LocalSession: p.a.LocalSession(), RemoteSession: 1})
	if err != nil {
		t.Fatalf("reusing a closed flow's session: %v", err)
	}
	if _, err := p.ma.NewFlow(FlowConfig{LocalSession: p.a.LocalSession(), RemoteSession: 1}); !errors.Is(err, ErrSessionInUse) {
		t.Fatalf("session in use: %v", err)
	}
	f.Close()

	// b is idle and expires between 40 and 50 ms from its last datagram.
	select {
	case <-p.b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("idle flow did not expire")
	}
	if _, err := p.b.Receive(context.Background()); !errors.Is(err, ErrExpired) {
		t.Fatalf("Receive after expiry: %v", err)
	}
	if err := p.b.Send([]byte("x")); !errors.Is(err, ErrExpired) {
		t.Fatalf("Send after expiry: %v", err)
	}
	if n := p.mb.Flows(); n != 0 {
		t.Fatalf("%d flows left", n)
	}

	// A flow that keeps talking does not expire.
	q := flowsOn(t, p.ma, p.mb, true)
	for range 20 {
		if err := q.a.Send([]byte("keepalive")); err != nil {
			t.Fatal(err)
		}
		recv(t, q.b)
		time.Sleep(5 * time.Millisecond)
	}
	if q.b.Err() != nil {
		t.Fatalf("active flow ended: %v", q.b.Err())
	}

	// Closing the Mux ends every flow.
	p.mb.Close()
	if err := q.b.Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("flow after Mux.Close: %v", err)
	}
	if _, err := p.mb.NewFlow(FlowConfig{LocalSession: 1, RemoteSession: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewFlow on a closed Mux: %v", err)
	}
	if err := p.mb.Close(); err != nil {
		t.Fatalf("second Mux.Close: %v", err)
	}
}

func TestReceiveContext(t *testing.T) {
	p := newPair(t, true, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.a.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive: %v", err)
	}
	// Cancelling lost nothing; concurrent receivers each get one datagram.
	const n = 50
	var wg sync.WaitGroup
	got := make(chan string, n)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				b, err := p.b.Receive(ctx)
				cancel()
				if err != nil {
					return
				}
				got <- string(b)
			}
		}()
	}
	for i := range n {
		if err := p.a.Send([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(got)
	seen := map[string]bool{}
	for s := range got {
		if seen[s] {
			t.Fatalf("%s delivered twice", s)
		}
		seen[s] = true
	}
	if len(seen) != n {
		t.Fatalf("delivered %d of %d", len(seen), n)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		network, laddr string
		cfg            *Config
		field          string
	}{
		{"udp", "127.0.0.1:0", nil, "network"},
		{"udp4", "localhost:0", nil, "laddr"},
		{"udp4", "127.0.0.1", nil, "laddr"},
		{"udp4", "[::1]:0", nil, "laddr"},
		{"udp6", "127.0.0.1:0", nil, "laddr"},
		{"udp4", "127.0.0.1:70000", nil, "laddr"},
		{"udp4", ":0", &Config{IdleTimeout: time.Millisecond}, "Config.IdleTimeout"},
		{"udp4", ":0", &Config{QueueLen: -1}, "Config.QueueLen"},
		{"udp4", ":0", &Config{QueueBytes: 1}, "Config.QueueBytes"},
		{"udp4", ":0", &Config{SocketBuffer: 1 << 30}, "Config.SocketBuffer"},
	} {
		m, err := Listen(tc.network, tc.laddr, tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			if m != nil {
				m.Close()
			}
			t.Errorf("Listen(%q, %q, %+v) = %v, want a ConfigError for %s", tc.network, tc.laddr, tc.cfg, err, tc.field)
		}
	}
	m := listenLoopback(t, nil)
	for _, tc := range []struct {
		fc    FlowConfig
		field string
	}{
		{FlowConfig{RemoteSession: 1}, "FlowConfig.LocalSession"},
		{FlowConfig{LocalSession: 1}, "FlowConfig.RemoteSession"},
		{FlowConfig{LocalSession: 1, RemoteSession: 1, RemoteAddr: netip.MustParseAddrPort("[::1]:5")}, "FlowConfig.RemoteAddr"},
		{FlowConfig{LocalSession: 1, RemoteSession: 1, RemoteAddr: netip.MustParseAddrPort("127.0.0.1:0")}, "FlowConfig.RemoteAddr"},
		{FlowConfig{LocalSession: 1, RemoteSession: 1, RemoteAddr: netip.MustParseAddrPort("0.0.0.0:5")}, "FlowConfig.RemoteAddr"},
	} {
		_, err := m.NewFlow(tc.fc)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("NewFlow(%+v) = %v, want a ConfigError for %s", tc.fc, err, tc.field)
		}
	}
	// An IPv4-mapped address is unmapped for an IPv4 Mux.
	f, err := m.NewFlow(FlowConfig{LocalSession: 1, RemoteSession: 1, RemoteAddr: netip.MustParseAddrPort("[::ffff:127.0.0.1]:5")})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.RemoteAddr(); got != netip.MustParseAddrPort("127.0.0.1:5") {
		t.Errorf("RemoteAddr() = %s", got)
	}
	f.Close()
	if _, err := KeysFromExporter(make([]byte, 32), true); err == nil {
		t.Error("KeysFromExporter took 32 bytes")
	}
}

func TestIPv6(t *testing.T) {
	ma, err := Listen("udp6", "[::1]:0", nil)
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ma.Close()
	mb, err := Listen("udp6", "[::1]:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	p := flowsOn(t, ma, mb, true)
	if err := p.a.Send([]byte("v6")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, p.b); string(got) != "v6" {
		t.Fatalf("got %q", got)
	}
	if err := p.b.Send([]byte("back")); err != nil {
		t.Fatal(err)
	}
	recv(t, p.a)
	mtu, err := pathMTU(mb.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.a.MaxSize(), mtu-40-8-SealedOverhead; got != want {
		t.Errorf("MaxSize() = %d, want %d", got, want)
	}
	big := make([]byte, p.a.MaxSize())
	if err := p.a.Send(big); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, p.b); len(got) != len(big) {
		t.Fatalf("got %d bytes", len(got))
	}
}

// An IPv6 peer is the same peer whether its zone is given by name or by
// index; the address and port must still match.
func TestSameAddrZones(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo:", err)
	}
	byName := netip.MustParseAddrPort("[fe80::1%lo]:7000")
	byIndex := netip.AddrPortFrom(byName.Addr().WithZone(strconv.Itoa(lo.Index)), 7000)
	for _, tc := range []struct {
		a, b netip.AddrPort
		want bool
	}{
		{byName, byName, true},
		{byName, byIndex, true},
		{byName, netip.AddrPortFrom(byName.Addr(), 7001), false},
		{byName, netip.AddrPortFrom(byName.Addr().WithZone(""), 7000), false},
		{byName, netip.AddrPortFrom(byName.Addr().WithZone("nosuch0"), 7000), false},
		{byName, netip.MustParseAddrPort("[fe80::2%lo]:7000"), false},
	} {
		if got := sameAddr(tc.a, tc.b); got != tc.want {
			t.Errorf("sameAddr(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
