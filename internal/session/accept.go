package session

import (
	"bufio"
	"context"
	"net"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
)

// Acceptor takes the connections the node's transports accept
// (transport.Acceptor): it runs the listener side of the link handshake
// and hands the link to its Conn of type C (or the stream a connection
// carries to its Conn).
type Acceptor[C any] struct {
	Dials  *Dials
	Stream func(transport.Stream, *bufio.Reader) error // takes a stream connection
	Attach func(*Path) (c C, isNew bool, err error)    // gives a link to its Conn
	Queue  chan<- C                                    // new Conns, for Accept
	Spawn  func(func())                                // runs f until the node closes
	Failed func(remote net.Addr, err error)            // an incoming connection refused
}

// HandleConn runs the listener side of the link handshake on c.
func (a *Acceptor[C]) HandleConn(c transport.Conn, deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	l, err := a.Dials.Accept(ctx, c, a.Stream)
	if err != nil {
		a.Failed(c.RemoteAddr(), err)
		return
	}
	if l == nil {
		return // a stream connection, now handed to its Conn
	}
	conn, isNew, err := a.Attach(l)
	if err != nil || !isNew {
		return
	}
	// The peer is authenticated: return to the transport, which counts
	// unauthenticated connections until then, while the Conn waits for
	// Accept (AcceptBacklog).
	a.Spawn(func() {
		select {
		case a.Queue <- conn:
		case <-a.Dials.NodeDone:
		}
	})
}

// HandleFailure reports an incoming connection refused during its
// handshake.
func (a *Acceptor[C]) HandleFailure(remote net.Addr, err error) { a.Failed(remote, err) }
