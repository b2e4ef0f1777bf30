package nearnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/nearnet/nearnet/security"
)

// streamModes are the security modes every stream test runs in.
func streamModes() map[string][2]Config {
	idA, _ := security.NewIdentity()
	idB, _ := security.NewIdentity()
	return map[string][2]Config{
		"psk":  {{}, {}},
		"none": {{Security: SecurityNone}, {Security: SecurityNone}},
		"pinned": {
			{Identity: idA, Trust: []security.Fingerprint{idB.Fingerprint()}},
			{Identity: idB, Trust: []security.Fingerprint{idA.Fingerprint()}},
		},
	}
}

// streamPair opens a stream from one end of a connection and accepts it
// at the other. fromListener opens it from the side that accepted the
// connection, which asks the dialer to open the stream connection.
func streamPair(t testing.TB, ca, cb *Conn, fromListener bool) (opened, accepted *Stream) {
	t.Helper()
	ctx := ctxT(t)
	opener, acceptor := ca, cb
	if fromListener {
		opener, acceptor = cb, ca
	}
	type res struct {
		s   *Stream
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := acceptor.AcceptStream(ctx)
		ch <- res{s, err}
	}()
	s, err := opener.OpenStreamMeta(ctx, "pipe", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.s.Name() != "pipe" || r.s.Meta()["k"] != "v" {
		t.Fatalf("acceptor sees name %q meta %v", r.s.Name(), r.s.Meta())
	}
	return s, r.s
}

func TestStreamConformsToNetConn(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		for name, cfgs := range streamModes() {
			for _, fromListener := range []bool{false, true} {
				dir := "dialer-opens"
				if fromListener {
					dir = "listener-opens"
				}
				t.Run(name+"/"+dir, func(t *testing.T) {
					a, b := newNodeOn(t, tr, cfgs[0]), newNodeOn(t, tr, cfgs[1])
					ca, cb := pair(t, a, b)
					nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
						s1, s2 := streamPair(t, ca, cb, fromListener)
						return s1, s2, func() { s1.Close(); s2.Close() }, nil
					})
				})
			}
		}
	})
}

// With the smallest StreamBuffer the read-ahead (streamconn.go) is smaller
// than a TLS record, so reads go past it, and the ring wraps on every
// write: still a conforming net.Conn, in both directions.
func TestStreamSmallBuffersConform(t *testing.T) {
	cfg := Config{StreamBuffer: 4 << 10} // PSK mode: TLS
	for _, fromListener := range []bool{false, true} {
		t.Run(fmt.Sprintf("listener-opens=%v", fromListener), func(t *testing.T) {
			a, b := newNodeOn(t, TransportTCP, cfg), newNodeOn(t, TransportTCP, cfg)
			ca, cb := pair(t, a, b)
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
				s1, s2 := streamPair(t, ca, cb, fromListener)
				return s1, s2, func() { s1.Close(); s2.Close() }, nil
			})
		})
	}
}

func TestStreamHalfClose(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		for name, cfgs := range streamModes() {
			t.Run(name, func(t *testing.T) {
				a, b := newNodeOn(t, tr, cfgs[0]), newNodeOn(t, tr, cfgs[1])
				ca, cb := pair(t, a, b)
				s1, s2 := streamPair(t, ca, cb, false)
				defer s1.Close()
				defer s2.Close()
				// s1 sends a request and half-closes; s2 reads to EOF, then
				// answers on the still open direction.
				if _, err := s1.Write([]byte("request")); err != nil {
					t.Fatal(err)
				}
				if err := s1.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				if _, err := s1.Write([]byte("more")); err == nil {
					t.Fatal("Write after CloseWrite succeeded")
				}
				got, err := io.ReadAll(s2)
				if err != nil || string(got) != "request" {
					t.Fatalf("read %q, %v", got, err)
				}
				if _, err := s2.Write([]byte("response")); err != nil {
					t.Fatal(err)
				}
				s2.CloseWrite()
				got, err = io.ReadAll(s1)
				if err != nil || string(got) != "response" {
					t.Fatalf("read back %q, %v", got, err)
				}
			})
		}
	})
}

// A writer facing a reader that does not read blocks, and the memory it
// uses stays near Config.StreamBuffer plus the socket buffers, whatever it
// tries to send.
func TestStreamSlowReaderBoundsMemory(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a := newNodeOn(t, tr, Config{StreamBuffer: 64 << 10})
		b := newNodeOn(t, tr, Config{StreamBuffer: 64 << 10})
		ca, cb := pair(t, a, b)
		s1, s2 := streamPair(t, ca, cb, false)
		defer s2.Close()
		chunk := make([]byte, 1<<20)
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s1.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		written := 0
		var err error
		for i := 0; i < 256 && err == nil; i++ { // at most 256 MiB
			var n int
			n, err = s1.Write(chunk)
			written += n
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("writer did not block on a reader that does not read: wrote %d bytes, err %v", written, err)
		}
		if written >= 256<<20 {
			t.Fatalf("wrote %d bytes without the reader reading", written)
		}
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 16<<20 {
			t.Fatalf("heap grew by %d bytes while the writer was blocked", grew)
		}
		// The stream goes on after the timeout: everything written arrives.
		s1.SetWriteDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := s1.Write([]byte("tail"))
			if err == nil {
				err = s1.Close()
			}
			done <- err
		}()
		n, err := io.Copy(io.Discard, s2)
		if err != nil || n != int64(written)+4 {
			t.Fatalf("reader got %d bytes (%v), writer wrote %d+4", n, err, written)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// Two streams on one connection both make progress while each carries
// bulk data: one never waits for the other to finish.
func TestConcurrentStreamsShareFairly(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		const total = 32 << 20
		type counter struct {
			mu sync.Mutex
			n  [2]int64
		}
		var got counter
		var minOther int64 = -1 // bytes of the other stream when the first finished
		var wg sync.WaitGroup
		// Both streams are open before either sends, so that neither has a
		// head start.
		var pairs [2][2]*Stream
		for i := range pairs {
			pairs[i][0], pairs[i][1] = streamPair(t, ca, cb, i == 1)
		}
		start := make(chan struct{})
		for i := 0; i < 2; i++ {
			s1, s2 := pairs[i][0], pairs[i][1]
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				buf := make([]byte, 64<<10)
				for sent := 0; sent < total; sent += len(buf) {
					if _, err := s1.Write(buf); err != nil {
						t.Error(err)
						return
					}
				}
				s1.Close()
			}()
			go func() {
				defer wg.Done()
				defer s2.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := s2.Read(buf)
					got.mu.Lock()
					got.n[i] += int64(n)
					if got.n[i] == total && minOther < 0 {
						minOther = got.n[1-i]
					}
					got.mu.Unlock()
					if err == io.EOF {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if got.n[0] != total || got.n[1] != total {
			t.Fatalf("received %v, want %d each", got.n, total)
		}
		// The loser had received a real share when the winner finished (not
		// the leftovers of a stream that waited for the other).
		if minOther < total/8 {
			t.Fatalf("when one stream finished the other had only %d of %d bytes", minOther, total)
		}
	})
}

func TestStreamsEndWithAbortedConn(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		s1, s2 := streamPair(t, ca, cb, false)
		defer s1.Close()
		ca.Abort()
		s2.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ne net.Error
		if _, err := s2.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("peer's stream read %v after the Conn was aborted, want the stream ended", err)
		}
		if _, err := ca.OpenStream(ctxT(t), "x"); err == nil {
			t.Fatal("OpenStream on an aborted Conn succeeded")
		}
	})
}

// A graceful Close of the Conn leaves streams to finish their transfer.
func TestStreamOutlivesGracefulClose(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		s1, s2 := streamPair(t, ca, cb, false)
		data := make([]byte, 4<<20)
		rand.Read(data)
		go func() {
			s1.Write(data)
			s1.Close()
		}()
		ca.Close()
		got, err := io.ReadAll(s2)
		s2.Close()
		if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
	})
}

func TestStreamBacklogRefusesExcess(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a := newNodeOn(t, tr, Config{})
		b := newNodeOn(t, tr, Config{StreamBacklog: 2})
		ca, cb := pair(t, a, b)
		ctx := ctxT(t)
		for i := 0; i < 2; i++ {
			s, err := ca.OpenStream(ctx, "ok")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
		}
		_, err := ca.OpenStream(ctx, "third")
		var se *StreamError
		if !errors.As(err, &se) || se.Name != "third" {
			t.Fatalf("third stream over a backlog of 2: %v", err)
		}
		s, err := cb.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = ca.OpenStream(ctx, "fits again")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		// The Conn itself is unaffected.
		if err := ca.SendMessage(ctx, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		if m, err := cb.ReceiveMessage(ctx); err != nil || string(m) != "still here" {
			t.Fatalf("%q %v", m, err)
		}
	})
}

func TestStreamNameLimits(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, _ := pair(t, a, b)
		_, err := ca.OpenStream(ctxT(t), string(bytes.Repeat([]byte("n"), 2000)))
		var se *StreamError
		if !errors.As(err, &se) {
			t.Fatalf("over-long name: %v", err)
		}
	})
}

// A stream connection that names a real handle but cannot prove the key
// is refused, and nothing reaches AcceptStream.
func TestStreamForgedProofRefused(t *testing.T) {
	a, b := newNode(t, Config{Security: SecurityNone}), newNode(t, Config{Security: SecurityNone})
	ca, cb := pair(t, a, b)
	l := ca.s.SendPath()
	raw, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	o := []byte("NNS1")
	body := []byte(`{"handle":"` + l.Handle + `","id":1,"proof":"` + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" + `"}`)
	o = append(o, byte(len(body)>>8), byte(len(body)))
	raw.Write(append(o, body...))
	reply, _ := io.ReadAll(raw)
	if !bytes.Contains(reply, []byte("proof does not match")) {
		t.Fatalf("reply %q", reply)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if s, err := cb.AcceptStream(ctx); err == nil {
		t.Fatalf("forged stream %q was accepted", s.Name())
	}
}

// A stream whose peer falls silent ends after its idle timeout: Read fails
// with ErrStreamIdle (a timeout), and the peer sees the stream end. Bytes
// moving keep it alive.
func TestStreamIdleTimeout(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		opened, accepted := streamPair(t, ca, cb, false)
		accepted.SetIdleTimeout(500 * time.Millisecond)
		for i := 0; i < 15; i++ { // longer than the timeout, bytes moving every 50 ms
			if _, err := opened.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := io.ReadFull(accepted, b[:]); err != nil {
				t.Fatalf("while bytes move: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var buf [1]byte
		_, err := accepted.Read(buf[:]) // the peer is silent from now on
		var ne net.Error
		if !errors.Is(err, ErrStreamIdle) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read on an idle stream: %v; want ErrStreamIdle, a timeout", err)
		}
		opened.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := opened.Read(buf[:]); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the peer's Read: %v; want the stream ended", err)
		}
		opened.Abort()
	})
}
