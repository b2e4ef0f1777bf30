package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/nearnet/nearnet"
	"net"
	"sync/atomic"
	"time"
)

// The datagram measurements move size-byte datagrams one way over
// loopback: one sending goroutine, one receiving goroutine, with at most
// DatagramWindow datagrams in flight (sent and not yet delivered), so they
// measure a receiver that keeps up, not how much a flood overruns it.
// Nearnet is Conn.SendDatagram and Conn.ReceiveDatagram (pre-shared-key
// mode: AES-256-GCM sealed); the baseline is plain UDP on 127.0.0.1 with
// one sendto and one recvfrom per datagram, into a reused buffer, on
// sockets with the buffers nearnet's socket asks for. These are the
// internal/dgram benchmarks' "window" runs, through the public API.

// DatagramWindow is the most datagrams a measurement keeps in flight.
const DatagramWindow = 256

const (
	// datagramStall: with no delivery for this long, what is in flight is
	// written off as lost and the sender goes on.
	datagramStall = 50 * time.Millisecond
	// datagramQuiet: after the last send, the run ends when everything has
	// arrived or nothing has for this long.
	datagramQuiet = 200 * time.Millisecond
	// datagramBuffer is the socket buffer size the baseline asks for, as
	// internal/dgram does for nearnet's socket.
	datagramBuffer = 4 << 20
)

// DatagramRun is what one datagram measurement saw.
type DatagramRun struct {
	Sent      int
	Delivered int
	// Elapsed is from the first send to the last delivery (or to the end
	// of sending, if that is later).
	Elapsed time.Duration
}

// Rate is the delivered datagrams per second.
func (r DatagramRun) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.Elapsed.Seconds()
}

// LossPercent is the share of the datagrams sent that were not delivered.
func (r DatagramRun) LossPercent() float64 {
	if r.Sent == 0 {
		return 0
	}
	return 100 * float64(r.Sent-r.Delivered) / float64(r.Sent)
}

// dgramLink is one way of moving datagrams, for runDatagrams.
type dgramLink struct {
	send func(p []byte) error
	// recv receives one datagram; it fails once stop was called.
	recv func() error
	stop func()
}

// runDatagrams sends count datagrams of size bytes over l, keeping at most
// DatagramWindow in flight, and waits for them. It calls l.stop before it
// returns.
func runDatagrams(ctx context.Context, l dgramLink, size, count int) (DatagramRun, error) {
	var delivered atomic.Int64
	var lastAt atomic.Int64 // UnixNano of the last delivery
	progress := make(chan struct{}, 1)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for delivered.Load() < int64(count) {
			if l.recv() != nil {
				return
			}
			delivered.Add(1)
			lastAt.Store(time.Now().UnixNano())
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			l.stop()
			<-recvDone
		}
	}
	defer stop()

	payload := make([]byte, size)
	stall := time.NewTimer(time.Hour)
	defer stall.Stop()
	writtenOff := 0
	start := time.Now()
	for sent := 0; sent < count; sent++ {
		for sent-int(delivered.Load())-writtenOff >= DatagramWindow {
			stall.Reset(datagramStall)
			select {
			case <-progress:
			case <-stall.C:
				// Nothing arrived for a while: count what is in flight
				// as lost (a late arrival still counts as delivered).
				writtenOff = sent - int(delivered.Load())
			case <-ctx.Done():
				return DatagramRun{}, ctx.Err()
			}
		}
		if err := l.send(payload); err != nil {
			return DatagramRun{}, err
		}
	}
	sendTime := time.Since(start)
	for prev := int64(-1); ; {
		d := delivered.Load()
		if d >= int64(count) || d == prev {
			break
		}
		prev = d
		select {
		case <-recvDone:
		case <-time.After(datagramQuiet):
		case <-ctx.Done():
			return DatagramRun{}, ctx.Err()
		}
	}
	stop()
	r := DatagramRun{Sent: count, Delivered: int(delivered.Load()), Elapsed: sendTime}
	if r.Delivered > 0 {
		r.Elapsed = max(sendTime, time.Duration(lastAt.Load()-start.UnixNano()))
	}
	return r, nil
}

// datagramWarmup is how many datagrams go through each link before it is
// measured, so that neither side is charged for first-use costs.
func datagramWarmup(count int) int { return min(count, 2000) }

// NearnetDatagrams measures count size-byte datagrams from one Conn to its
// peer on loopback (after a warm-up on the same pair).
func NearnetDatagrams(ctx context.Context, tr nearnet.Transport, size, count int) (DatagramRun, error) {
	p, err := newNNPair(ctx, tr)
	if err != nil {
		return DatagramRun{}, err
	}
	defer p.Close()
	if limit := p.ca.MaxDatagramSize(); limit < size {
		return DatagramRun{}, fmt.Errorf("bench: datagrams of %d bytes, but the loopback connection takes at most %d", size, limit)
	}
	measure := func(n int) (DatagramRun, error) {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		return runDatagrams(ctx, dgramLink{
			send: p.ca.SendDatagram,
			recv: func() error { _, err := p.cb.ReceiveDatagram(rctx); return err },
			stop: cancel,
		}, size, n)
	}
	if err := warmUp(measure, count); err != nil {
		return DatagramRun{}, err
	}
	return measure(count)
}

// RawDatagrams is NearnetDatagrams's baseline: plain UDP between two
// sockets on 127.0.0.1, one sendto and one recvfrom per datagram.
func RawDatagrams(ctx context.Context, size, count int) (DatagramRun, error) {
	open := func() (*net.UDPConn, error) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		c.SetReadBuffer(datagramBuffer)
		c.SetWriteBuffer(datagramBuffer)
		forceBuffers(c, datagramBuffer)
		return c, nil
	}
	tx, err := open()
	if err != nil {
		return DatagramRun{}, err
	}
	defer tx.Close()
	rx, err := open()
	if err != nil {
		return DatagramRun{}, err
	}
	defer rx.Close()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 64<<10)
	measure := func(n int) (DatagramRun, error) {
		if err := rx.SetReadDeadline(time.Time{}); err != nil {
			return DatagramRun{}, err
		}
		return runDatagrams(ctx, dgramLink{
			send: func(p []byte) error { _, err := tx.WriteToUDPAddrPort(p, to); return err },
			recv: func() error { _, _, err := rx.ReadFromUDPAddrPort(buf); return err },
			stop: func() { rx.SetReadDeadline(time.Now()) },
		}, size, n)
	}
	if err := warmUp(measure, count); err != nil {
		return DatagramRun{}, err
	}
	return measure(count)
}

// warmUp runs a short measurement and checks that datagrams got through.
func warmUp(measure func(int) (DatagramRun, error), count int) error {
	r, err := measure(datagramWarmup(count))
	if err == nil && r.Delivered == 0 {
		err = errors.New("bench: no datagram arrived during the warm-up")
	}
	return err
}
