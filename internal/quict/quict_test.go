package quict

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/nettest"

	"github.com/nearnet/nearnet/security"
)

func TestStreamsAreNetConns(t *testing.T) {
	t.Run("Stream", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, err := makePair(ctx, nil, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			sa, sb, err := streamPair(ctx, p.d, p.l)
			if err != nil {
				p.close()
				return nil, nil, nil, err
			}
			return sa, sb, func() { sa.Close(); sb.Close(); p.close() }, nil
		})
	})
	t.Run("Control", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, err := makePair(ctx, nil, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			return p.l.Control(), p.d.Control(), p.close, nil
		})
	})
}

func TestControlRoundTrip(t *testing.T) {
	p := newPair(t, nil, nil)
	hello := []byte("hello from the dialer")
	if _, err := p.d.Control().Write(hello); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(hello))
	if _, err := io.ReadFull(p.l.Control(), got); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("listener read %q, %v", got, err)
	}
	if _, err := p.l.Control().Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 5)
	if _, err := io.ReadFull(p.d.Control(), got); err != nil || string(got) != "reply" {
		t.Fatalf("dialer read %q, %v", got, err)
	}

	// A read deadline set from another goroutine interrupts a blocked Read,
	// and the stream stays usable afterwards.
	errc := make(chan error, 1)
	go func() {
		_, err := p.l.Control().Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the Read block (the test passes either way)
	p.l.Control().SetReadDeadline(time.Now())
	err := <-errc
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("interrupted Read: %v, want a timeout", err)
	}
	p.l.Control().SetReadDeadline(time.Time{})
	p.d.Control().Write([]byte("x"))
	if _, err := io.ReadFull(p.l.Control(), got[:1]); err != nil || got[0] != 'x' {
		t.Fatalf("read after the deadline was cleared: %q, %v", got[:1], err)
	}

	// Closing the control stream's write side is an EOF for the peer.
	if err := p.d.Control().CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := p.l.Control().Read(got); n != 0 || err != io.EOF {
		t.Fatalf("after CloseWrite: %d, %v; want io.EOF", n, err)
	}
}

func TestExporterMatches(t *testing.T) {
	p := newPair(t, nil, nil)
	ds, ls := p.d.ConnectionState(), p.l.ConnectionState()
	for _, cs := range []tls.ConnectionState{ds, ls} {
		if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != security.ALPN || !cs.HandshakeComplete {
			t.Fatalf("version %x, ALPN %q, complete %v", cs.Version, cs.NegotiatedProtocol, cs.HandshakeComplete)
		}
	}
	if got := security.FingerprintOf(ls.PeerCertificates[0]); got != clientID.Fingerprint() {
		t.Errorf("listener sees %v, want the dialer's certificate", got)
	}
	if got := security.FingerprintOf(ds.PeerCertificates[0]); got != serverID.Fingerprint() {
		t.Errorf("dialer sees %v, want the listener's certificate", got)
	}
	a, err := ds.ExportKeyingMaterial("EXPORTER-test", []byte("ctx"), 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ls.ExportKeyingMaterial("EXPORTER-test", []byte("ctx"), 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("exporters differ: %x and %x", a, b)
	}

	key, err := security.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	proof, err := security.Proof(key, &ds, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := security.VerifyProof(key, &ls, true, proof); err != nil {
		t.Fatalf("the dialer's proof does not verify on the listener: %v", err)
	}
	other, _ := security.GenerateKey()
	if err := security.VerifyProof(other, &ls, true, proof); !errors.Is(err, security.ErrKeyMismatch) {
		t.Fatalf("proof with another key: %v", err)
	}
}

func TestDatagrams(t *testing.T) {
	p := newPair(t, nil, nil)
	ctx := testCtx(t)
	for _, dir := range []struct {
		name     string
		from, to *Conn
	}{{"dialer to listener", p.d, p.l}, {"listener to dialer", p.l, p.d}} {
		t.Run(dir.name, func(t *testing.T) {
			max := dir.from.MaxDatagramSize()
			if max < 1000 || max > 65535 {
				t.Fatalf("MaxDatagramSize %d", max)
			}
			for _, size := range []int{0, 1, 100, max} {
				want := make([]byte, size)
				for i := range want {
					want[i] = byte(i + size)
				}
				// A datagram may be lost even on loopback: try a few times.
				var got []byte
				for try := 0; try < 10 && got == nil; try++ {
					if err := dir.from.SendDatagram(want); err != nil {
						t.Fatalf("%d bytes: %v", size, err)
					}
					rctx, cancel := context.WithTimeout(ctx, time.Second)
					g, err := dir.to.ReceiveDatagram(rctx)
					cancel()
					if err == nil {
						got = g
					}
				}
				if got == nil || !bytes.Equal(got, want) {
					t.Fatalf("%d bytes: received %d bytes", size, len(got))
				}
			}
			// One byte over the limit, read again just before: path MTU
			// discovery may have raised it meanwhile (it only grows), and
			// may raise it again between the read and the send, so a
			// datagram larger than any path also must fail.
			for _, size := range []int{dir.from.MaxDatagramSize() + 1, 64 << 10} {
				err := dir.from.SendDatagram(make([]byte, size))
				var tl *DatagramTooLargeError
				if errors.As(err, &tl) && errors.Is(err, ErrDatagramTooLarge) && tl.Size == size && tl.Max >= max && tl.Max < size {
					continue
				}
				if size == 64<<10 || err != nil {
					t.Fatalf("a datagram of %d bytes: %v (%+v)", size, err, tl)
				}
				// Accepted: the limit grew between the read and the send.
			}
		})
	}
}

func TestCloseCodeReachesPeer(t *testing.T) {
	for _, tc := range []struct {
		code          uint64
		reason        string
		listenerClose bool
	}{
		{1000, "", false},
		{4001, "rejected by the admission hook", false},
		{4002, "pre-shared key mismatch", true},
		{4003, "untrusted", false},
		{4004, "duplicate", true},
		{4005, "bad hello", false},
	} {
		p := newPair(t, nil, nil)
		closer, peer := p.d, p.l
		if tc.listenerClose {
			closer, peer = p.l, p.d
		}
		if err := closer.CloseWithError(tc.code, tc.reason); err != nil {
			t.Fatal(err)
		}
		_, err := peer.Control().Read(make([]byte, 10))
		want := CloseError{Code: tc.code, Reason: tc.reason, Remote: true}
		var ce *CloseError
		if !errors.As(err, &ce) || *ce != want || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("peer's Read after close %d: %v, want %v", tc.code, err, &want)
		}
		<-peer.Done()
		if !errors.As(context.Cause(peer.Context()), &ce) || *ce != want {
			t.Fatalf("peer's context cause: %v", context.Cause(peer.Context()))
		}
		if !errors.As(peer.Err(), &ce) || *ce != want {
			t.Fatalf("peer's Err: %v", peer.Err())
		}
		if _, err := peer.OpenStream(testCtx(t)); !errors.As(err, &ce) || *ce != want {
			t.Fatalf("peer's OpenStream: %v", err)
		}
		want.Remote = false
		if _, err := closer.AcceptStream(testCtx(t)); !errors.As(err, &ce) || *ce != want {
			t.Fatalf("closer's AcceptStream: %v, want %v", err, &want)
		}
		if err := closer.SendDatagram([]byte("x")); !errors.As(err, &ce) || *ce != want {
			t.Fatalf("closer's SendDatagram: %v, want %v", err, &want)
		}
	}
}

func TestCloseValidatesCode(t *testing.T) {
	p := newPair(t, nil, nil)
	var ce *ConfigError
	if err := p.d.CloseWithError(1<<62, "x"); !errors.As(err, &ce) {
		t.Fatalf("code 2^62: %v", err)
	}
	if p.d.Err() != nil {
		t.Fatal("an invalid code closed the connection")
	}
	long := string(bytes.Repeat([]byte("é"), 100)) // 200 bytes
	p.d.CloseWithError(4000, long)
	_, err := p.l.Control().Read(make([]byte, 1))
	var cl *CloseError
	if !errors.As(err, &cl) || len(cl.Reason) != 122 || cl.Reason != long[:122] {
		t.Fatalf("long reason: %v", err)
	}
}

// TestSlowReaderBoundsMemory: a writer far faster than its reader is held
// back by flow control, so memory does not grow with the bytes written.
func TestSlowReaderBoundsMemory(t *testing.T) {
	const (
		window = 256 << 10
		total  = 64 << 20
		chunk  = 32 << 10
	)
	conf := &Config{
		InitialStreamReceiveWindow: window, MaxStreamReceiveWindow: window,
		InitialConnectionReceiveWindow: 2 * window, MaxConnectionReceiveWindow: 2 * window,
	}
	p := newPair(t, conf, conf)
	ctx := testCtx(t)
	sa, sb, err := streamPair(ctx, p.d, p.l)
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base := heap()

	var written atomic.Int64
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, chunk)
		for written.Load() < total {
			n, err := sa.Write(buf)
			written.Add(int64(n))
			if err != nil {
				werr <- err
				return
			}
		}
		werr <- sa.CloseWrite()
	}()

	// Nobody reads: the writer must stall once the window is full.
	var last int64 = -1
	for stable := 0; stable < 20; {
		time.Sleep(10 * time.Millisecond)
		if w := written.Load(); w == last {
			stable++
		} else {
			last, stable = w, 0
		}
		if ctx.Err() != nil {
			t.Fatal("the writer never stalled")
		}
	}
	if last > window+2*chunk {
		t.Fatalf("with nobody reading, %d bytes were written past a receive window of %d", last, window)
	}
	t.Logf("writer stalled after %d bytes", last)

	// Now read slowly, in small pieces, and watch the heap.
	var read int64
	var peak uint64
	buf := make([]byte, 4<<10)
	nextCheck := int64(0)
	for {
		n, err := sb.Read(buf)
		read += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if read >= nextCheck {
			nextCheck += 4 << 20
			if h := heap(); h > peak {
				peak = h
			}
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if read != total {
		t.Fatalf("read %d bytes, want %d", read, total)
	}
	growth := int64(peak) - int64(base)
	t.Logf("heap in use grew by at most %d KiB while %d MiB went through", growth>>10, total>>20)
	if growth > total/8 {
		t.Fatalf("heap grew by %d bytes for %d bytes written: memory is not bounded by the window", growth, total)
	}
}

func TestTwoStreamsConcurrently(t *testing.T) {
	p := newPair(t, nil, nil)
	ctx := testCtx(t)
	const size = 4 << 20
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 2 {
		a, b, err := streamPair(ctx, p.d, p.l)
		if err != nil {
			t.Fatal(err)
		}
		// Each stream carries data both ways at once; each end checks a hash.
		for _, dir := range [][2]*Stream{{a, b}, {b, a}} {
			data := make([]byte, size)
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range data {
				data[j] = byte(r.Uint32())
			}
			want := sha256.Sum256(data)
			w, rd := dir[0], dir[1]
			wg.Go(func() {
				if _, err := w.Write(data); err != nil {
					errs <- err
					return
				}
				errs <- w.CloseWrite()
			})
			wg.Go(func() {
				h := sha256.New()
				if _, err := io.Copy(h, rd); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(h.Sum(nil), want[:]) {
					errs <- errors.New("data differs")
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamCloseReleases: closing a stream the peer still writes to stops
// the peer's writer with a StreamError, and closed streams give their
// credit back, so more than MaxIncomingStreams can be opened one after
// another.
func TestStreamCloseReleases(t *testing.T) {
	p := newPair(t, &Config{MaxIncomingStreams: 2}, nil)
	ctx := testCtx(t)
	for i := range 10 {
		a, b, err := streamPair(ctx, p.d, p.l)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		// b closes while a keeps writing: a's Write must fail, not block.
		errc := make(chan error, 1)
		go func() {
			buf := make([]byte, 64<<10)
			for range 1000 {
				if _, err := a.Write(buf); err != nil {
					errc <- err
					return
				}
			}
			errc <- errors.New("the writer was never stopped")
		}()
		if _, err := b.Write([]byte("last words")); err != nil {
			t.Fatal(err)
		}
		b.Close()
		err = <-errc
		var se *StreamError
		if !errors.As(err, &se) || !se.Remote || se.Code != StreamCodeClosed {
			t.Fatalf("writer to a closed stream: %v", err)
		}
		// What b wrote before Close still arrives, then EOF.
		got, err := io.ReadAll(a)
		if err != nil || string(got) != "last words" {
			t.Fatalf("read %q, %v", got, err)
		}
		a.Close()
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
	}
}

func TestWrongCertificate(t *testing.T) {
	other := mustIdentity().Fingerprint()
	ctx := testCtx(t)

	t.Run("dialer refuses the listener", func(t *testing.T) {
		ln, err := Listen("127.0.0.1:0", serverTLS(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = Dial(ctx, ln.Addr().String(), clientTLS(security.PinVerifier(other)), nil)
		var he *HandshakeError
		if !errors.As(err, &he) || he.Remote || he.Alert != 42 {
			t.Fatalf("Dial: %v, want a local bad_certificate HandshakeError", err)
		}
		var up *security.UntrustedPeerError
		if !errors.As(err, &up) {
			t.Errorf("Dial: %v does not carry the verifier's error", err)
		}
		t.Log(err)
	})

	t.Run("listener refuses the dialer", func(t *testing.T) {
		ln, err := Listen("127.0.0.1:0", serverTLS(security.PinVerifier(other)), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := Dial(ctx, ln.Addr().String(), clientTLS(nil), nil)
		if err == nil {
			// TLS 1.3: the dialer finished first; the refusal comes next.
			c.Control().Write([]byte("hello"))
			_, err = c.Control().Read(make([]byte, 1))
			<-c.Done()
		}
		var he *HandshakeError
		if !errors.As(err, &he) || !he.Remote || he.Alert != 42 {
			t.Fatalf("%v, want a remote bad_certificate HandshakeError", err)
		}
		t.Log(err)
		actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if c, err := ln.Accept(actx); err == nil {
			t.Fatalf("the listener accepted %v", c.RemoteAddr())
		}
	})
}

func TestALPNMismatch(t *testing.T) {
	ctx := testCtx(t)
	t.Run("foreign dialer", func(t *testing.T) {
		ln, err := Listen("127.0.0.1:0", serverTLS(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		tc := clientTLS(nil)
		tc.NextProtos = []string{"h3"}
		_, err = quic.DialAddr(ctx, ln.Addr().String(), tc, nil)
		var te *quic.TransportError
		if !errors.As(err, &te) || !te.Remote || te.ErrorCode != 0x100+120 {
			t.Fatalf("%v, want a no_application_protocol alert", err)
		}
	})
	t.Run("foreign listener", func(t *testing.T) {
		sc := serverTLS(nil)
		sc.NextProtos = []string{"h3"}
		uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		// A Transport of its own, closed at once at the end (quic.ListenAddr's
		// would linger until the refused connection's state expires).
		qt := &quic.Transport{Conn: uc}
		defer qt.Close()
		ql, err := qt.Listen(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Dial(ctx, ql.Addr().String(), clientTLS(nil), nil)
		var he *HandshakeError
		if !errors.As(err, &he) || !he.Remote || he.Alert != 120 {
			t.Fatalf("%v, want a remote no_application_protocol HandshakeError", err)
		}
		t.Log(err)
	})
}

// TestNoControlStream: a dialer that never writes is closed by the
// listener after the handshake timeout, with a code that says why.
func TestNoControlStream(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", serverTLS(nil), &Config{HandshakeTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Dial(testCtx(t), ln.Addr().String(), clientTLS(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	var ce *CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != CodeProtocolError || !ce.Remote {
		t.Fatalf("%v, want a remote close %d", c.Err(), CodeProtocolError)
	}
}

// TestSharedTransport: one socket per node both listens and dials.
func TestSharedTransport(t *testing.T) {
	ctx := testCtx(t)
	ta, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Close()
	tb, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if r, w := ta.SocketBuffers(); runtime.GOOS == "linux" && (r == 0 || w == 0) {
		t.Errorf("socket buffers %d, %d", r, w)
	}
	lb, err := tb.Listen(serverTLS(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	la, err := ta.Listen(serverTLS(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	// a dials b and b dials a, each from its listening socket.
	var onB []*Conn // b's ends
	for _, d := range []struct {
		from *Transport
		to   *Listener
	}{{ta, lb}, {tb, la}} {
		c, err := d.from.Dial(ctx, d.to.Addr().String(), clientTLS(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.LocalAddr().String() != d.from.LocalAddr().String() {
			t.Errorf("dialed from %v, not from the transport's socket %v", c.LocalAddr(), d.from.LocalAddr())
		}
		c.Control().Write([]byte("hi"))
		s, err := d.to.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("accepted from %v, want %v", s.RemoteAddr(), c.LocalAddr())
		}
		onB = append(onB, map[bool]*Conn{true: s, false: c}[d.to == lb])
	}
	// Closing a transport closes all its connections, dialed and accepted,
	// with CodeGoingAway.
	ta.Close()
	for _, c := range onB {
		<-c.Done()
		var ce *CloseError
		if !errors.As(c.Err(), &ce) || ce.Code != CodeGoingAway || !ce.Remote {
			t.Errorf("%v, want a remote close %d", c.Err(), CodeGoingAway)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		conf  Config
		field string
	}{
		{Config{HandshakeTimeout: time.Millisecond}, "Config.HandshakeTimeout"},
		{Config{HandshakeTimeout: -1}, "Config.HandshakeTimeout"},
		{Config{MaxIdleTimeout: 25 * time.Hour}, "Config.MaxIdleTimeout"},
		{Config{MaxIdleTimeout: time.Second, KeepAlivePeriod: time.Second}, "Config.KeepAlivePeriod"},
		{Config{KeepAlivePeriod: time.Minute}, "Config.KeepAlivePeriod"},
		{Config{InitialStreamReceiveWindow: 1024}, "Config.InitialStreamReceiveWindow"},
		{Config{MaxStreamReceiveWindow: 2 << 30}, "Config.MaxStreamReceiveWindow"},
		{Config{InitialStreamReceiveWindow: 1 << 20, MaxStreamReceiveWindow: 512 << 10}, "Config.InitialStreamReceiveWindow"},
		{Config{InitialStreamReceiveWindow: 8 << 20}, "Config.InitialStreamReceiveWindow"},
		{Config{InitialConnectionReceiveWindow: 1}, "Config.InitialConnectionReceiveWindow"},
		{Config{MaxConnectionReceiveWindow: 1}, "Config.MaxConnectionReceiveWindow"},
		{Config{MaxIncomingStreams: -1}, "Config.MaxIncomingStreams"},
		{Config{MaxIncomingStreams: 70000}, "Config.MaxIncomingStreams"},
	} {
		_, err := Listen("127.0.0.1:0", serverTLS(nil), &tc.conf)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: %v, want an error naming %s", tc.conf, err, tc.field)
		}
		if _, err := Dial(testCtx(t), "127.0.0.1:1", clientTLS(nil), &tc.conf); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("Dial %+v: %v, want an error naming %s", tc.conf, err, tc.field)
		}
	}
	for _, ok := range []Config{
		{},
		{KeepAlivePeriod: -1},
		{MaxIdleTimeout: time.Second}, // the default keepalive shrinks to fit
		{InitialStreamReceiveWindow: 16 << 10, MaxStreamReceiveWindow: 16 << 10, MaxIncomingStreams: 1},
	} {
		if _, err := ok.withDefaults(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestConfigNotMutated(t *testing.T) {
	sc, cc := serverTLS(nil), clientTLS(nil)
	sc.NextProtos, cc.NextProtos = nil, nil
	conf := &Config{}
	p, err := func() (*pair, error) {
		ctx := testCtx(t)
		ln, err := Listen("127.0.0.1:0", sc, conf)
		if err != nil {
			return nil, err
		}
		d, err := Dial(ctx, ln.Addr().String(), cc, conf)
		if err != nil {
			ln.Close()
			return nil, err
		}
		d.Control().Write([]byte{1})
		l, err := ln.Accept(ctx)
		if err != nil {
			d.Close()
			ln.Close()
			return nil, err
		}
		return &pair{ln: ln, d: d, l: l}, nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if sc.NextProtos != nil || cc.NextProtos != nil || *conf != (Config{}) {
		t.Fatal("Listen or Dial changed the caller's configuration")
	}
	if got := p.d.ConnectionState().NegotiatedProtocol; got != security.ALPN {
		t.Fatalf("ALPN %q", got)
	}
}

// TestIdleTimeout: without keepalives, a quiet connection is closed after
// the idle timeout, and the error says it was a timeout.
func TestIdleTimeout(t *testing.T) {
	conf := &Config{MaxIdleTimeout: 300 * time.Millisecond, KeepAlivePeriod: -1}
	p := newPair(t, conf, conf)
	<-p.d.Done()
	var ne net.Error
	if !errors.As(p.d.Err(), &ne) || !ne.Timeout() {
		t.Fatalf("%v, want a timeout", p.d.Err())
	}
	if _, err := p.d.Control().Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read: %v, want a timeout", err)
	}
	if n := p.d.MaxDatagramSize(); n != 0 {
		t.Fatalf("MaxDatagramSize of a closed connection: %d", n)
	}
}

// TestCloseClosesSocket: a Transport's Close closes the socket it was
// given (quic-go closes only the sockets it opened itself), so a node's
// UDP socket does not outlive the node.
func TestCloseClosesSocket(t *testing.T) {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTransport(uc)
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	uc.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang, not a measurement
	if _, _, err := uc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after the Transport's Close, a read from its socket returned %v; want net.ErrClosed", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}
