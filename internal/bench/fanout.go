package bench

import (
	"bufio"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nearnet/nearnet"
)

// The floor under a group's broadcast: one sender hands a message to each
// of n-1 receivers over its own connection, in one process, and the time
// is until the last receiver has read it. No group protocol, no
// forwarding, no signature: what n-1 deliveries cost on this machine (each
// needs at least a write and a read system call, an encryption and a
// decryption, and a receiver goroutine woken).

// RawFanOut measures samples broadcasts of size bytes to receivers raw
// TLS 1.3 connections, written one after another by one goroutine.
func RawFanOut(ctx context.Context, receivers, size, samples int) ([]time.Duration, error) {
	var pairs []*rawPair
	defer func() {
		for _, p := range pairs {
			p.Close()
		}
	}()
	for range receivers {
		p, err := newRawPair(ctx)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}
	stop := context.AfterFunc(ctx, func() {
		for _, p := range pairs {
			p.Close()
		}
	})
	defer stop()
	got := make(chan struct{}, receivers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(p.server)
			var hdr [4]byte
			for {
				if _, err := readFrame(r, hdr[:]); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
	}
	defer func() {
		for _, p := range pairs {
			p.client.Close()
		}
	}()
	frame := make([]byte, 4+size)
	frame[0], frame[1], frame[2], frame[3] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	out := make([]time.Duration, 0, samples)
	for range samples {
		t0 := time.Now()
		for _, p := range pairs {
			if _, err := p.client.Write(frame); err != nil {
				return nil, err
			}
		}
		for range receivers {
			select {
			case <-got:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// NearnetFanOut is RawFanOut over nearnet Conns: one node connected to
// receivers nodes, SendMessage to each in turn.
func NearnetFanOut(ctx context.Context, tr nearnet.Transport, receivers, size, samples int) ([]time.Duration, error) {
	a, err := newNode(tr, nil)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	var conns []*nearnet.Conn
	got := make(chan struct{}, receivers)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range receivers {
		b, err := newNode(tr, nil)
		if err != nil {
			return nil, err
		}
		defer b.Close()
		if err := b.Listen(ctx); err != nil {
			return nil, err
		}
		ca, err := a.Connect(ctx, b.Addr().String())
		if err != nil {
			return nil, err
		}
		cb, err := b.Accept(ctx)
		if err != nil {
			return nil, err
		}
		conns = append(conns, ca)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := cb.ReceiveMessage(rctx); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
	}
	msg := make([]byte, size)
	out := make([]time.Duration, 0, samples)
	for range samples {
		t0 := time.Now()
		for _, c := range conns {
			if err := c.SendMessage(ctx, msg); err != nil {
				return nil, err
			}
		}
		for range receivers {
			select {
			case <-got:
			case <-ctx.Done():
				return nil, errors.Join(errors.New("fan-out"), ctx.Err())
			}
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}
