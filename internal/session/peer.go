package session

import (
	"context"

	"github.com/nearnet/nearnet/internal/transport"
)

// Conns is what ConnectPeer needs of the node, whose Conn type is C.
type Conns[C comparable] struct {
	Table       *Table[C]
	Dials       *Dials
	New         func(id [16]byte, name string) C    // a Conn preparing
	WaitReady   func(context.Context, C) (C, error) // waits for a Conn another Connect prepares
	Attach      func(*Path) (C, error)              // gives a link to its Conn
	Start       func()                              // before the first dial (the path monitor)
	Spawn       func(func())                        // runs a dial in the background
	Waiting     func(err error) error               // the error a failed round shows
	Retry       bool                                // Config.RetryConnect
	PathChanged func() <-chan struct{}              // closed at the next path change
	Extra       []transport.Attempt                 // raced after addrs (first contact beyond the LAN)
}

// ConnectPeer dials addrs in turn, each over the transports of order,
// until one works. With a known peer id the Conn exists from the start,
// in state preparing, and concurrent ConnectPeers to the same peer wait
// for it instead of dialing again.
func ConnectPeer[C comparable](ctx context.Context, p *Conns[C], id [16]byte, name string, addrs []string, order []transport.Transport) (C, error) {
	var c, zero C
	var s *Session
	if id != ([16]byte{}) {
		var old, closed bool
		c, old, closed = p.Table.Open(id, func() C { return p.New(id, name) })
		switch {
		case closed:
			return zero, p.Dials.ErrClosed
		case old:
			return p.WaitReady(ctx, c)
		}
		s = p.Table.sess(c)
	}
	p.Start()
	l, ready, errs := Connect(ctx, s, Dialer{
		Round: func() (*Path, []error) {
			return p.Dials.Race(ctx, addrs, order, p.Extra, id, func(l *Path) { p.Attach(l) }, p.Spawn)
		},
		Final: p.Dials.Final, Waiting: p.Waiting, Retry: p.Retry, PathChanged: p.PathChanged, NodeDone: p.Dials.NodeDone,
	})
	switch {
	case l != nil:
		return p.Attach(l)
	case ready:
		return c, nil
	}
	err := p.Waiting(JoinErrors(errs, p.Retry, ctx.Err()))
	if s != nil && s.FailConnect(err) {
		return c, nil // an incoming link made it ready meanwhile
	}
	return zero, err
}
