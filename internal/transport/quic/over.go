package quic

import (
	"context"
	"net"
	"sync"

	"github.com/nearnet/nearnet/internal/quict"
	"github.com/nearnet/nearnet/internal/transport"
)

// QUIC over a packet path the caller brings: an ICE path (a host,
// server-reflexive or relayed candidate pair) is a net.PacketConn to one
// peer, not a UDP socket of the node's. Each such path gets a quict
// transport of its own, so QUIC's connection IDs and the node's socket are
// untouched; the connection is the same transport.Conn as over the node's
// socket (control stream, QUIC streams, DATAGRAM frames).

// DialOver dials a QUIC connection to raddr over pc, which the connection
// takes over: pc is closed when the connection has ended (and its
// streams with it), or when the Transport closes. ctx bounds the dial.
func (t *Transport) DialOver(ctx context.Context, pc net.PacketConn, raddr net.Addr) (transport.Conn, error) {
	qt := quict.NewTransport(pc)
	if !t.trackOver(qt) {
		qt.Close()
		return nil, &transport.StageError{Stage: "quic", Err: net.ErrClosed}
	}
	qc, err := qt.DialAddr(ctx, raddr, t.o.Client, t.config())
	if err != nil {
		t.untrackOver(qt)
		qt.Close()
		return nil, &transport.StageError{Stage: "quic", Err: err}
	}
	context.AfterFunc(qc.Context(), func() {
		t.untrackOver(qt)
		qt.Close()
	})
	return t.conn(qc), nil
}

// ListenOver accepts QUIC connections arriving over pc and hands each to
// a, as Listen does for the node's socket. Closing the listener closes pc
// and the connections accepted through it; so does closing the Transport.
func (t *Transport) ListenOver(pc net.PacketConn, a transport.Acceptor) (transport.Listener, error) {
	qt := quict.NewTransport(pc)
	ln, err := qt.Listen(t.o.Server, t.config())
	if err != nil {
		qt.Close()
		return nil, err
	}
	if !t.trackOver(qt) {
		ln.Close()
		qt.Close()
		return nil, net.ErrClosed
	}
	ctx, cancel := context.WithCancel(context.Background())
	ol := &overListener{ln: ln, qt: qt, cancel: cancel, t: t}
	t.wg.Add(1)
	go t.acceptLoop(ctx, ln, a)
	return ol, nil
}

// overListener is a listener on a caller's packet path.
type overListener struct {
	ln     *quict.Listener
	qt     *quict.Transport
	cancel context.CancelFunc
	t      *Transport
	once   sync.Once
}

func (l *overListener) Addr() net.Addr { return l.ln.Addr() }

func (l *overListener) Close() error {
	l.once.Do(func() {
		l.cancel()
		l.ln.Close()
		l.t.untrackOver(l.qt)
		l.qt.Close()
	})
	return nil
}

// trackOver records qt for Close; false once the Transport is closed.
func (t *Transport) trackOver(qt *quict.Transport) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if t.over == nil {
		t.over = map[*quict.Transport]struct{}{}
	}
	t.over[qt] = struct{}{}
	return true
}

func (t *Transport) untrackOver(qt *quict.Transport) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.over, qt)
}

// closeOver closes every transport on a caller's path.
func (t *Transport) closeOver() {
	t.mu.Lock()
	over := t.over
	t.over = nil
	t.mu.Unlock()
	for qt := range over {
		qt.Close()
	}
}
