package quict

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
)

// maxPending is how many handshaken connections may wait for their control
// stream at once; past it, the listener stops taking connections from
// quic-go, whose own queue then refuses new ones.
const maxPending = 64

// Listener accepts QUIC connections. It is safe for concurrent use by
// multiple goroutines.
type Listener struct {
	ql    *quic.Listener
	tr    *Transport
	owned bool // Close closes tr
	conf  Config

	ready  chan *Conn    // connections with their control stream
	done   chan struct{} // closed when the accept loop stops
	err    error         // why it stopped; written before done is closed
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the control-stream waits

	closeOnce sync.Once
}

func newListener(ql *quic.Listener, tr *Transport, conf Config, owned bool) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		ql: ql, tr: tr, owned: owned, conf: conf,
		ready: make(chan *Conn), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	l.wg.Add(1)
	go l.run()
	return l
}

func (l *Listener) run() {
	defer l.wg.Done()
	defer close(l.done)
	sem := make(chan struct{}, maxPending)
	for {
		qc, err := l.ql.Accept(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil {
				err = net.ErrClosed
			}
			l.err = fmt.Errorf("quict: accept: %w", err)
			return
		}
		select {
		case sem <- struct{}{}:
		case <-l.ctx.Done():
			qc.CloseWithError(CodeGoingAway, "listener closed")
			l.err = fmt.Errorf("quict: accept: %w", net.ErrClosed)
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-sem }()
			l.admit(qc)
		}()
	}
}

// admit waits (up to the handshake timeout) for qc's control stream and
// hands the connection to Accept.
func (l *Listener) admit(qc *quic.Conn) {
	ctx, cancel := context.WithTimeout(l.ctx, l.conf.HandshakeTimeout)
	defer cancel()
	s, err := qc.AcceptStream(ctx)
	if err != nil {
		switch {
		case l.ctx.Err() != nil:
			qc.CloseWithError(CodeGoingAway, "listener closed")
		case errors.Is(err, context.DeadlineExceeded):
			qc.CloseWithError(CodeProtocolError, "no control stream within the handshake timeout")
		}
		return
	}
	l.tr.track(qc)
	c := newConn(qc, s)
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		qc.CloseWithError(CodeGoingAway, "listener closed")
	}
}

// Accept returns the next connection whose handshake is complete and whose
// control stream has arrived. ctx bounds the wait. After [Listener.Close]
// it returns an error that matches net.ErrClosed.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Addr returns the address the listener's socket is bound to.
func (l *Listener) Addr() net.Addr { return l.ql.Addr() }

// Close stops accepting. Connections not yet returned by Accept are closed
// with [CodeGoingAway]; those already returned stay open, unless the
// listener came from [Listen] and so owns its socket: then Close closes
// them and the socket too. Close waits for the listener's goroutines.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.ql.Close()
		l.wg.Wait()
		if l.owned {
			l.tr.Close()
		}
	})
	return nil
}
