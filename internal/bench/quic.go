package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/nearnet/nearnet/security"
)

// The raw QUIC baselines use quic-go directly, as nearnet's QUIC transport
// (internal/quict) will: TLS 1.3 with both sides' self-signed P-256
// certificates and ALPN "nearnet/1", datagrams enabled, quic-go's default
// flow-control windows, each side on a UDP socket of its own on 127.0.0.1
// (with the 7 MiB buffers quic-go asks for, where the OS grants them).
// Messages on a stream are framed with a 4-byte length, as in the raw TLS
// baselines.

// rawQUIC is a listening QUIC endpoint and a dialing one.
type rawQUIC struct {
	srv, cli  *quic.Transport
	ln        *quic.Listener
	clientTLS *tls.Config
}

var rawQUICConfig = &quic.Config{EnableDatagrams: true}

func newRawQUIC() (*rawQUIC, error) {
	sid, err := security.NewIdentity()
	if err != nil {
		return nil, err
	}
	cid, err := security.NewIdentity()
	if err != nil {
		return nil, err
	}
	open := func() (*quic.Transport, error) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		return &quic.Transport{Conn: c}, nil
	}
	srv, err := open()
	if err != nil {
		return nil, err
	}
	cli, err := open()
	if err != nil {
		srv.Close()
		return nil, err
	}
	ln, err := srv.Listen(security.ServerConfig(sid, nil), rawQUICConfig)
	if err != nil {
		srv.Close()
		cli.Close()
		return nil, err
	}
	return &rawQUIC{srv: srv, cli: cli, ln: ln, clientTLS: security.ClientConfig(cid, nil)}, nil
}

func (q *rawQUIC) dial(ctx context.Context) (*quic.Conn, error) {
	return q.cli.Dial(ctx, q.ln.Addr(), q.clientTLS, rawQUICConfig)
}

func (q *rawQUIC) Close() {
	q.ln.Close()
	q.cli.Close()
	q.srv.Close()
}

// rawQUICPair is a connected raw QUIC pair with one stream, whose first
// byte the server side has read (the peer learns of a stream from its
// first byte).
type rawQUICPair struct {
	q                    *rawQUIC
	client, server       *quic.Conn
	clientStr, serverStr *quic.Stream
}

func newRawQUICPair(ctx context.Context) (*rawQUICPair, error) {
	q, err := newRawQUIC()
	if err != nil {
		return nil, err
	}
	p := &rawQUICPair{q: q}
	if err := p.connect(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *rawQUICPair) connect(ctx context.Context) (err error) {
	if p.client, err = p.q.dial(ctx); err != nil {
		return err
	}
	if p.clientStr, err = p.client.OpenStreamSync(ctx); err != nil {
		return err
	}
	if _, err = p.clientStr.Write([]byte{0}); err != nil {
		return err
	}
	if p.server, err = p.q.ln.Accept(ctx); err != nil {
		return err
	}
	if p.serverStr, err = p.server.AcceptStream(ctx); err != nil {
		return err
	}
	var b [1]byte
	_, err = io.ReadFull(p.serverStr, b[:])
	return err
}

func (p *rawQUICPair) Close() {
	if p.client != nil {
		p.client.CloseWithError(0, "")
	}
	if p.server != nil {
		p.server.CloseWithError(0, "")
	}
	p.q.Close()
}

// RawQUICConnect is the QUIC counterpart of RawConnect, n times: QUIC and
// TLS 1.3 handshake with both certificates from the client's socket (the
// same one each time, as a node dials from its one socket), open a stream,
// one 64-byte message read by the server.
func RawQUICConnect(ctx context.Context, n int) ([]time.Duration, error) {
	q, err := newRawQUIC()
	if err != nil {
		return nil, err
	}
	defer q.Close()
	got := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			c, err := q.ln.Accept(ctx)
			if err == nil {
				var s *quic.Stream
				if s, err = c.AcceptStream(ctx); err == nil {
					var hdr [4]byte
					_, err = readFrame(bufio.NewReader(s), hdr[:])
				}
			}
			got <- err // before the close, which is not part of the measurement
			if c != nil {
				c.CloseWithError(0, "")
			}
			if err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	out := make([]time.Duration, 0, n)
	var hdr [4]byte
	for i := 0; i < n; i++ {
		t0 := time.Now()
		c, err := q.dial(ctx)
		if err != nil {
			return nil, err
		}
		s, err := c.OpenStreamSync(ctx)
		if err == nil {
			err = writeFrame(s, hdr[:], msg)
		}
		if err == nil {
			err = <-got
		}
		out = append(out, time.Since(t0))
		c.CloseWithError(0, "")
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RawQUICBulk is the QUIC counterpart of RawBulk: size-byte writes to one
// stream, read into one reused buffer, until count have arrived.
func RawQUICBulk(ctx context.Context, size, count int) (time.Duration, error) {
	p, err := newRawQUICPair(ctx)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	stop := context.AfterFunc(ctx, p.Close)
	defer stop()
	return bulkCopy(p.clientStr, p.serverStr, size, count)
}

// RawQUICPingPong is the QUIC counterpart of RawPingPong: n round trips of
// a length-framed size-byte message on one stream.
func RawQUICPingPong(ctx context.Context, size, n int) ([]time.Duration, error) {
	p, err := newRawQUICPair(ctx)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	stop := context.AfterFunc(ctx, p.Close)
	defer stop()
	return framedPingPong(p.clientStr, p.serverStr, size, n)
}

// RawQUICDatagrams is the QUIC counterpart of RawDatagrams: count
// size-byte QUIC DATAGRAM frames (RFC 9221) one way, at most
// DatagramWindow in flight, after a warm-up on the same pair.
func RawQUICDatagrams(ctx context.Context, size, count int) (DatagramRun, error) {
	p, err := newRawQUICPair(ctx)
	if err != nil {
		return DatagramRun{}, err
	}
	defer p.Close()
	// Ask for the limit with a payload too large for any packet.
	if err := p.client.SendDatagram(make([]byte, 1<<16)); err != nil {
		if tl, ok := err.(*quic.DatagramTooLargeError); ok && tl.MaxDatagramPayloadSize < int64(size) {
			return DatagramRun{}, fmt.Errorf("bench: QUIC datagrams of %d bytes, but the loopback connection takes at most %d", size, tl.MaxDatagramPayloadSize)
		}
	}
	measure := func(n int) (DatagramRun, error) {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		return runDatagrams(ctx, dgramLink{
			send: p.client.SendDatagram,
			recv: func() error { _, err := p.server.ReceiveDatagram(rctx); return err },
			stop: cancel,
		}, size, n)
	}
	if err := warmUp(measure, count); err != nil {
		return DatagramRun{}, err
	}
	return measure(count)
}
