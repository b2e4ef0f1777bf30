package nearnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
)

var errNoTransport = errors.New("nearnet: the peer offers no transport this node dials")

// dialOrder lists the transports Connect tries, in order, for a peer that
// offers the given transports (an advert's "tr" entry; nil: unknown, as
// for "host:port").
func (n *Node) dialOrder(offered []string) []transport.Transport {
	if offered == nil {
		return n.dialers
	}
	var out []transport.Transport
	for _, t := range n.dialers {
		if slices.Contains(offered, t.Name()) {
			out = append(out, t)
		}
	}
	return out
}

// dialResume makes an outgoing link to addr that offers to resume c's
// session (c nil: a fresh session), over the transports the node dials,
// in order.
func (n *Node) dialResume(ctx context.Context, addr string, c *Conn) (*link, error) {
	return n.dialVia(ctx, n.dialOrder(nil), addr, c)
}

// dialVia tries the transports of order in turn; it stops at a refusal,
// which the peer would repeat over another transport. The error is the
// first transport's. With another transport to fall back on or to come
// back to, a transport's own handshake is bounded by its FallbackAfter.
func (n *Node) dialVia(ctx context.Context, order []transport.Transport, addr string, c *Conn) (*link, error) {
	var first error
	for _, t := range order {
		var limit time.Duration
		if len(order) > 1 {
			limit = t.FallbackAfter()
		}
		l, err := n.dial(ctx, t, addr, c, limit)
		if err == nil {
			return l, nil
		}
		if first == nil {
			first = err
		}
		if isRejection(err) || ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = errNoTransport
	}
	return nil, first
}

// dial makes an outgoing link over t to addr, which offers to resume c's
// session (c nil: a fresh session). limit, if not 0, bounds the
// transport's own handshake.
func (n *Node) dial(ctx context.Context, t transport.Transport, addr string, c *Conn, limit time.Duration) (*link, error) {
	herr := func(stage string, err error) error {
		if ctx.Err() != nil && !isRejection(err) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return &HandshakeError{Addr: addr, Stage: stage, Err: err}
	}
	select { // a place among Config.MaxDials
	case n.dials <- struct{}{}:
		defer func() { <-n.dials }()
	case <-ctx.Done():
		return nil, herr(t.Name(), ctx.Err())
	case <-n.done:
		return nil, herr(t.Name(), ErrClosed)
	}
	dl := n.deadlineFor(ctx)
	if d := time.Now().Add(limit); limit > 0 && d.Before(dl) {
		dl = d
	}
	dctx, cancel := context.WithDeadline(ctx, dl)
	tc, err := t.Dial(dctx, addr)
	cancel()
	if err != nil {
		stage := t.Name()
		if se, ok := errorsAs[*transport.StageError](err); ok {
			stage, err = se.Stage, se.Err
		}
		return nil, herr(stage, err)
	}
	l := newLink(n, tc, writeThroughOf(tc), true)
	l.dialed, l.resumeFor = addr, c
	l.nc.SetDeadline(n.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { l.nc.SetDeadline(aLongTimeAgo) })
	defer stop()
	if stage, err := n.clientHandshake(l, addr, tc.TLS()); err != nil {
		err = fromTransport(err)
		if x, ok := tc.(interface{ Err() error }); ok && !isRejection(err) {
			// The listener's refusal may have come as the transport's
			// close (QUIC's CONNECTION_CLOSE) rather than as the close
			// frame before it.
			if perr := fromTransport(x.Err()); isRejection(perr) {
				err = perr
			}
		}
		return nil, herr(stage, err)
	}
	l.nc.SetDeadline(time.Time{})
	return l, nil
}

// writeThroughOf returns what a link writes through (writethrough.go), or
// nil where c offers nothing.
func writeThroughOf(c transport.Conn) transport.WriteThrough {
	if w, ok := c.(interface{ WriteThrough() transport.WriteThrough }); ok {
		return w.WriteThrough()
	}
	return nil
}
