package quict

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/quic-go/quic-go"
)

// The benchmarks run each measurement through quict and through quic-go
// directly (same TLS configurations, same default windows, one UDP socket
// per side on 127.0.0.1), so the two figures of one run can be compared:
//
//	go test -exec "$PWD/.ci/netns-exec" -run - -bench . ./internal/quict/

// rawPair is a quic-go connection pair with one stream, without quict.
type rawPair struct {
	ts, tc *quic.Transport
	c, s   *quic.Conn
	cs, ss *quic.Stream
}

func newRawPair(b *testing.B) *rawPair {
	ctx := testCtx(b)
	open := func() *quic.Transport {
		uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		return &quic.Transport{Conn: uc}
	}
	p := &rawPair{ts: open(), tc: open()}
	b.Cleanup(func() { p.tc.Close(); p.ts.Close() })
	conf := &quic.Config{EnableDatagrams: true}
	ln, err := p.ts.Listen(serverTLS(nil), conf)
	if err != nil {
		b.Fatal(err)
	}
	if p.c, err = p.tc.Dial(ctx, ln.Addr(), clientTLS(nil), conf); err != nil {
		b.Fatal(err)
	}
	if p.cs, err = p.c.OpenStreamSync(ctx); err != nil {
		b.Fatal(err)
	}
	p.cs.Write([]byte{0})
	if p.s, err = ln.Accept(ctx); err != nil {
		b.Fatal(err)
	}
	if p.ss, err = p.s.AcceptStream(ctx); err != nil {
		b.Fatal(err)
	}
	io.ReadFull(p.ss, make([]byte, 1))
	return p
}

// benchPair returns a writer and a reader end of one stream: through quict
// (raw false) or quic-go (raw true).
func benchPair(b *testing.B, raw bool) (io.ReadWriter, io.ReadWriter) {
	if raw {
		p := newRawPair(b)
		return p.cs, p.ss
	}
	p := newPair(b, nil, nil)
	return p.d.Control(), p.l.Control()
}

func BenchmarkBulk(b *testing.B) {
	for _, raw := range []bool{false, true} {
		b.Run(map[bool]string{false: "quict", true: "quic-go"}[raw], func(b *testing.B) {
			w, r := benchPair(b, raw)
			const size = 64 << 10
			b.SetBytes(size)
			errc := make(chan error, 1)
			buf := make([]byte, size)
			b.ResetTimer()
			go func() {
				msg := make([]byte, size)
				for range b.N {
					if _, err := w.Write(msg); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for range b.N {
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkPingPong(b *testing.B) {
	for _, raw := range []bool{false, true} {
		b.Run(map[bool]string{false: "quict", true: "quic-go"}[raw], func(b *testing.B) {
			a, e := benchPair(b, raw)
			const size = 64
			done := make(chan struct{})
			go func() {
				defer close(done)
				br := bufio.NewReader(e)
				buf := make([]byte, 4+size)
				for {
					if _, err := io.ReadFull(br, buf); err != nil {
						return
					}
					if _, err := e.Write(buf); err != nil {
						return
					}
				}
			}()
			frame := make([]byte, 4+size)
			binary.BigEndian.PutUint32(frame, size)
			in := make([]byte, 4+size)
			ar := bufio.NewReader(a)
			b.ResetTimer()
			for range b.N {
				if _, err := a.Write(frame); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(ar, in); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if c, ok := a.(interface{ CloseWrite() error }); ok {
				c.CloseWrite()
			} else {
				a.(*quic.Stream).Close()
			}
			<-done
		})
	}
}
