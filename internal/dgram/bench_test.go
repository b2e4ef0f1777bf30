package dgram

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// The benchmarks move 1200-byte datagrams over loopback, one sender and one
// receiving goroutine, and report:
//
//	sent/s       datagrams the sender handed over per second
//	delivered/s  datagrams the receiving application got per second
//	loss_%       datagrams sent but not delivered
//	cpu-ns/dgram the process's CPU time (user and system, both sides and the
//	             kernel's loopback work done for them) per delivered datagram:
//	             steadier than the rates on a shared machine
//
// "flood" sends as fast as the sender can; "window" keeps at most 256
// datagrams in flight (sent, not yet delivered), which is a receiver that
// keeps up. Raw is plain UDP with one system call per datagram each way
// (RawBatch: sendmmsg/recvmmsg, 32 at a time); Flow is this package,
// sealed (secure) or plaintext (insecure). Run with
//
//	go test -run XXX -bench . -benchtime 200000x ./internal/dgram/
const benchSize = 1200

// benchWindow is the in-flight limit of the "window" runs.
const benchWindow = 256

// link is one way of moving datagrams, for the harness.
type link struct {
	send func(p []byte) error
	// recv receives one datagram; it returns an error once stop was called.
	recv func() error
	stop func()
}

func runLink(b *testing.B, l link, window bool) {
	payload := make([]byte, benchSize)
	n := b.N
	var delivered atomic.Int64
	var lastAt atomic.Int64 // UnixNano of the last delivery
	tokens := make(chan struct{}, benchWindow)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for delivered.Load() < int64(n) {
			if l.recv() != nil {
				return
			}
			delivered.Add(1)
			lastAt.Store(time.Now().UnixNano())
			if window {
				select {
				case <-tokens:
				default:
				}
			}
		}
	}()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i := 0; i < n; i++ {
		if window {
			select {
			case tokens <- struct{}{}:
			case <-time.After(100 * time.Millisecond):
				// A datagram was lost and took its token with it.
			}
		}
		if err := l.send(payload); err != nil {
			b.Fatal(err)
		}
	}
	sendTime := time.Since(start)
	// Wait until everything arrived or nothing has for 200ms.
	for prev := int64(-1); ; {
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond):
			if d := delivered.Load(); d != prev {
				prev = d
				continue
			}
			l.stop()
			<-done
		}
		break
	}
	b.StopTimer()
	got := delivered.Load()
	reportCPU(b, cpu0, got)
	elapsed := sendTime
	if got > 0 {
		elapsed = max(sendTime, time.Duration(lastAt.Load()-start.UnixNano()))
	}
	b.ReportMetric(float64(n)/sendTime.Seconds(), "sent/s")
	b.ReportMetric(float64(got)/elapsed.Seconds(), "delivered/s")
	b.ReportMetric(100*float64(int64(n)-got)/float64(n), "loss_%")
}

func rawPair(b *testing.B) (tx, rx *net.UDPConn) {
	open := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			b.Fatal(err)
		}
		// The same buffers the Mux asks for, for a fair comparison.
		c.SetReadBuffer(defaultSocketBuffer)
		c.SetWriteBuffer(defaultSocketBuffer)
		forceBuffers(c, defaultSocketBuffer)
		b.Cleanup(func() { c.Close() })
		return c
	}
	return open(), open()
}

func BenchmarkRaw(b *testing.B) {
	for _, mode := range []string{"flood", "window"} {
		b.Run(mode, func(b *testing.B) {
			tx, rx := rawPair(b)
			to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
			buf := make([]byte, slotSize)
			runLink(b, link{
				send: func(p []byte) error { _, err := tx.WriteToUDPAddrPort(p, to); return err },
				recv: func() error { _, _, err := rx.ReadFromUDPAddrPort(buf); return err },
				stop: func() { rx.SetReadDeadline(time.Now()) },
			}, mode == "window")
		})
	}
}

// BenchmarkRawBatch is plain UDP with sendmmsg and recvmmsg (on Linux;
// elsewhere x/net falls back to one datagram per call).
func BenchmarkRawBatch(b *testing.B) {
	tx, rx := rawPair(b)
	ptx, prx := ipv4.NewPacketConn(tx), ipv4.NewPacketConn(rx)
	to := rx.LocalAddr()
	const batch = 32
	out := make([]ipv4.Message, batch)
	payload := make([]byte, benchSize)
	for i := range out {
		out[i] = ipv4.Message{Buffers: [][]byte{payload}, Addr: to}
	}
	in := make([]ipv4.Message, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, slotSize)}
	}
	n := b.N
	var delivered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for delivered.Load() < int64(n) {
			k, err := prx.ReadBatch(in, 0)
			if err != nil {
				return
			}
			delivered.Add(int64(k))
		}
	}()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for sent := 0; sent < n; {
		k, err := ptx.WriteBatch(out[:min(batch, n-sent)], 0)
		if err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	sendTime := time.Since(start)
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		rx.SetReadDeadline(time.Now())
		<-done
	}
	elapsed := time.Since(start)
	b.StopTimer()
	got := delivered.Load()
	reportCPU(b, cpu0, got)
	b.ReportMetric(float64(n)/sendTime.Seconds(), "sent/s")
	b.ReportMetric(float64(got)/elapsed.Seconds(), "delivered/s")
	b.ReportMetric(100*float64(int64(n)-got)/float64(n), "loss_%")
}

func BenchmarkFlow(b *testing.B) {
	for _, secure := range []bool{true, false} {
		for _, mode := range []string{"flood", "window"} {
			name := "insecure/" + mode
			if secure {
				name = "secure/" + mode
			}
			b.Run(name, func(b *testing.B) {
				p := newPair(b, secure, nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				runLink(b, link{
					send: p.a.Send,
					recv: func() error { _, err := p.b.Receive(ctx); return err },
					stop: cancel,
				}, mode == "window")
				st := p.b.Stats()
				b.ReportMetric(float64(st.Dropped.QueueFull), "queuefull")
			})
		}
	}
}

// BenchmarkSeal is the cost of sealing one 1200-byte datagram.
func BenchmarkSeal(b *testing.B) {
	aead := newAEAD(&Key{1})
	buf := make([]byte, 0, sendBufSize)
	p := make([]byte, benchSize)
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		buf = seal(aead, new(nonceBuf), buf, 1, uint64(i), p)
	}
}
