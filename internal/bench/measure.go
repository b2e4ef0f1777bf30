package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"time"

	"github.com/nearnet/nearnet"
)

// NearnetConnect measures n times: dial, TLS, upgrade, hello, then one
// 64-byte message until the listener has received it.
func NearnetConnect(ctx context.Context, tr nearnet.Transport, n int) ([]time.Duration, error) {
	a, err := newNode(tr, nil)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := newNode(tr, nil)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if err := b.Listen(ctx); err != nil {
		return nil, err
	}
	addr := b.Addr().String()
	msg := make([]byte, 64)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		ca, err := a.Connect(ctx, addr)
		if err != nil {
			return nil, err
		}
		if err := ca.SendMessage(ctx, msg); err != nil {
			return nil, err
		}
		cb, err := b.Accept(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := cb.ReceiveMessage(ctx); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
		// Close fully before the next round, so that the next dial is a
		// new connection and not a duplicate of this one.
		ca.Close()
		<-cb.Done()
		<-ca.Done()
	}
	return out, nil
}

// RawConnect is NearnetConnect's baseline: TCP connect, TLS 1.3 with both
// certificates, one 64-byte message read by the server.
func RawConnect(ctx context.Context, n int) ([]time.Duration, error) {
	srv, err := newRawServer()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	got := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			c, err := srv.accept()
			if err == nil {
				var hdr [4]byte
				_, err = readFrame(bufio.NewReader(c), hdr[:])
			}
			got <- err // before the close, which is not part of the measurement
			if c != nil {
				c.Close()
			}
		}
	}()
	msg := make([]byte, 64)
	out := make([]time.Duration, 0, n)
	var hdr [4]byte
	for i := 0; i < n; i++ {
		t0 := time.Now()
		c, err := srv.dial(ctx)
		if err != nil {
			return nil, err
		}
		err = writeFrame(c, hdr[:], msg)
		if err == nil {
			err = <-got
		}
		out = append(out, time.Since(t0))
		c.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NearnetOneWay sends count messages of size bytes one way and returns the
// time until the last one was received.
func NearnetOneWay(ctx context.Context, tr nearnet.Transport, size, count int) (time.Duration, error) {
	p, err := newNNPair(ctx, tr)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	msg := make([]byte, size)
	errc := make(chan error, 1)
	t0 := time.Now()
	go func() {
		for i := 0; i < count; i++ {
			if err := p.ca.SendMessage(ctx, msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < count; i++ {
		if _, err := p.cb.ReceiveMessage(ctx); err != nil {
			return 0, err
		}
	}
	d := time.Since(t0)
	return d, <-errc
}

// RawOneWay is NearnetOneWay's baseline: length-prefixed messages through a
// 64 KiB bufio.Writer flushed once at the end (the best a single writer can
// do), read through a bufio.Reader into a new slice each.
func RawOneWay(ctx context.Context, size, count int) (time.Duration, error) {
	return rawOneWay(ctx, size, count, true)
}

// RawBulk is the bulk baseline: size-byte writes straight to the TLS
// connection, read into one reused buffer.
func RawBulk(ctx context.Context, size, count int) (time.Duration, error) {
	return rawOneWay(ctx, size, count, false)
}

func rawOneWay(ctx context.Context, size, count int, framed bool) (time.Duration, error) {
	p, err := newRawPair(ctx)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	stop := context.AfterFunc(ctx, p.Close)
	defer stop()
	if !framed {
		return bulkCopy(p.client, p.server, size, count)
	}
	msg := make([]byte, size)
	errc := make(chan error, 1)
	t0 := time.Now()
	go func() {
		w := bufio.NewWriterSize(p.client, 64<<10)
		var hdr [4]byte
		for i := 0; i < count; i++ {
			if err := writeFrame(w, hdr[:], msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- w.Flush()
	}()
	r := bufio.NewReaderSize(p.server, 64<<10)
	var hdr [4]byte
	for i := 0; i < count; i++ {
		if _, err := readFrame(r, hdr[:]); err != nil {
			return 0, err
		}
	}
	d := time.Since(t0)
	return d, <-errc
}

// bulkCopy is the bulk kernel of every baseline and of nearnet's streams:
// count writes of size bytes to w from one goroutine, read from r into
// one reused buffer; it returns the time until the last byte was read.
func bulkCopy(w io.Writer, r io.Reader, size, count int) (time.Duration, error) {
	msg := make([]byte, size)
	errc := make(chan error, 1)
	t0 := time.Now()
	go func() {
		for i := 0; i < count; i++ {
			if _, err := w.Write(msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, size)
	for i := 0; i < count; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return 0, err
		}
	}
	d := time.Since(t0)
	return d, <-errc
}

// NearnetPingPong measures n round trips of a size-byte message.
func NearnetPingPong(ctx context.Context, tr nearnet.Transport, size, n int) ([]time.Duration, error) {
	p, err := newNNPair(ctx, tr)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return pingPongOn(ctx, p, size, n)
}

// pingPongOn measures n round trips of a size-byte message on p.
func pingPongOn(ctx context.Context, p *nnPair, size, n int) ([]time.Duration, error) {
	go func() {
		for {
			m, err := p.cb.ReceiveMessage(ctx)
			if err != nil || p.cb.SendMessage(ctx, m) != nil {
				return
			}
		}
	}()
	msg := make([]byte, size)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := p.ca.SendMessage(ctx, msg); err != nil {
			return nil, err
		}
		if _, err := p.ca.ReceiveMessage(ctx); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// RawPingPong is NearnetPingPong's baseline over raw TLS.
func RawPingPong(ctx context.Context, size, n int) ([]time.Duration, error) {
	p, err := newRawPair(ctx)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	stop := context.AfterFunc(ctx, p.Close)
	defer stop()
	return framedPingPong(p.client, p.server, size, n)
}

// framedPingPong runs n round trips of a length-framed size-byte message:
// client writes it, server echoes it back. The baselines' ping-pong for
// raw TLS and raw QUIC. The caller closes both ends when it returns (which
// also ends the echo goroutine, waited for here).
func framedPingPong(client, server io.ReadWriter, size, n int) ([]time.Duration, error) {
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		r := bufio.NewReader(server)
		var hdr [4]byte
		buf := make([]byte, 0, 4+size)
		for {
			m, err := readFrame(r, hdr[:])
			if err != nil {
				return
			}
			buf = append(append(buf[:0], hdr[:4]...), m...)
			if _, err := server.Write(buf); err != nil {
				return
			}
		}
	}()
	defer func() {
		if c, ok := client.(io.Closer); ok {
			c.Close()
		}
		if c, ok := server.(io.Closer); ok {
			c.Close()
		}
		<-echoed
	}()
	r := bufio.NewReader(client)
	var hdr [4]byte
	frame := make([]byte, 4+size)
	frame[0], frame[1], frame[2], frame[3] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := client.Write(frame); err != nil {
			return nil, err
		}
		if _, err := readFrame(r, hdr[:]); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// NearnetBrowseToReady measures n times, each with a fresh node: from the
// start of a browse on the loopback interface to a ready connection to a
// peer advertised there.
func NearnetBrowseToReady(ctx context.Context, tr nearnet.Transport, n int) ([]time.Duration, error) {
	return browseToReadyOn(ctx, tr, n, loopbackName(), loopbackName())
}

// browseToReadyOn is NearnetBrowseToReady with the browser on interface
// browser and the advertised peer on interface peer.
func browseToReadyOn(ctx context.Context, tr nearnet.Transport, n int, browser, peer string) ([]time.Duration, error) {
	lo := []string{browser}
	b, err := newNode(tr, func(c *nearnet.Config) {
		c.Interfaces, c.Hidden = []string{peer}, false
		if peer != loopbackName() {
			c.ListenAddr = ":0" // reachable at the link's addresses
		}
	})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if err := b.Listen(ctx); err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		a, err := newNode(tr, func(c *nearnet.Config) { c.Interfaces = lo })
		if err != nil {
			return nil, err
		}
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t0 := time.Now()
		var d time.Duration
		var cerr error
		a.Browse(bctx, func(e nearnet.BrowseEvent) {
			if e.Kind != nearnet.Found || e.ID != b.ID() || d != 0 {
				return
			}
			c, err := a.ConnectAdvert(bctx, e.Advert)
			if err != nil {
				cerr = err
			} else if s, _ := c.State(); s.Kind == nearnet.StateReady {
				d = time.Since(t0)
			}
			cancel()
		})
		cancel()
		a.Close()
		if cerr != nil {
			return nil, cerr
		}
		if d == 0 {
			return nil, errors.New("bench: the advertised peer was not found within 10 s")
		}
		out = append(out, d)
	}
	return out, nil
}
