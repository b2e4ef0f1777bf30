package nearnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
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
	l := session.NewPath(tc, writeThroughOf(tc), true, &n.linkCfg)
	l.Dialed = addr
	if c != nil {
		l.ResumeFor = c.s
	}
	l.SetDeadline(n.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { l.SetDeadline(aLongTimeAgo) })
	defer stop()
	if stage, err := n.hs.Client(l, addr, tc.TLS()); err != nil {
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
	l.SetDeadline(time.Time{})
	n.startFlow(l)
	return l, nil
}

// writeThroughOf returns what a link writes through
// (internal/link/writethrough.go), or nil where c offers nothing.
func writeThroughOf(c transport.Conn) transport.WriteThrough {
	if w, ok := c.(interface{ WriteThrough() transport.WriteThrough }); ok {
		return w.WriteThrough()
	}
	return nil
}

// dialRace dials addrs over the transports of order, racing them in the
// way of Happy Eyeballs (transport.Race): every address over the first
// transport (address families interleaved), then over the next; the first
// to give a link wins. want, if not zero, is the peer the link must lead
// to. It returns the link, or one error per address (its first
// transport's, as dialVia).
func (n *Node) dialRace(ctx context.Context, addrs []string, order []transport.Transport, want PeerID) (*link, []error) {
	try := func(ctx context.Context, a transport.Attempt, limit time.Duration) (*link, error) {
		l, err := n.dial(ctx, a.T, a.Addr, nil, limit)
		if err == nil && !want.IsZero() && PeerID(l.Peer.ID) != want {
			sendCloseNow(l, &RejectedError{Code: wire.CloseBadHello, Reason: "wrong peer"})
			l.Fail(errors.New("wrong peer"))
			l, err = nil, fmt.Errorf("nearnet: %s answered as peer %v, not %v", a.Addr, PeerID(l.Peer.ID), want)
		}
		return l, err
	}
	spawn := func(f func()) {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			f()
		}()
	}
	late := func(l *link) { n.attach(l) }
	won, ok, firstErr := transport.Race(ctx, transport.Attempts(addrs, order), try, isRejection, late, spawn)
	if ok {
		return won, nil
	}
	var errs []error
	for _, a := range addrs {
		if err := firstErr[a]; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errNoTransport)
	}
	return nil, errs
}

// aLongTimeAgo is a deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)
