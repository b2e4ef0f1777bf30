package nearnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

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
	l := newLink(n, tc, writeThroughOf(tc), true)
	l.dialed, l.resumeFor = addr, c
	l.pairing = pairingFor(ctx)
	l.SetDeadline(n.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { l.SetDeadline(aLongTimeAgo) })
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
	l.SetDeadline(time.Time{})
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

// connectAttemptDelay is how long a connection attempt has before the next
// one starts beside it (RFC 8305, Happy Eyeballs: 250 ms recommended): a
// dead address family or a filtered address costs this, not a timeout.
const connectAttemptDelay = 250 * time.Millisecond

// dialRace dials addrs over the transports of order, racing them in the
// way of Happy Eyeballs (RFC 8305): the attempts, every address over the
// first transport (address families interleaved), then over the next, are
// started one after another, each connectAttemptDelay after the one before
// or as soon as it failed; the first to give a link wins and the others
// are cancelled. A rejection ends the race (the peer would repeat it).
// want, if not zero, is the peer the link must lead to. It returns the
// link, or one error per address (its first transport's, as dialVia).
func (n *Node) dialRace(ctx context.Context, addrs []string, order []transport.Transport, want PeerID) (*link, []error) {
	type attempt struct {
		addr string
		t    transport.Transport
	}
	var attempts []attempt
	ordered := interleaveFamilies(addrs)
	for _, t := range order {
		for _, a := range ordered {
			attempts = append(attempts, attempt{a, t})
		}
	}
	type result struct {
		i   int
		l   *link
		err error
	}
	attemptOne := func(ctx context.Context, a attempt, limit time.Duration) (*link, error) {
		l, err := n.dial(ctx, a.t, a.addr, nil, limit)
		if err == nil && !want.IsZero() && l.peer.ID != want {
			l.sendCloseNow(&RejectedError{Code: wire.CloseBadHello, Reason: "wrong peer"})
			l.Fail(errors.New("wrong peer"))
			l, err = nil, fmt.Errorf("nearnet: %s answered as peer %v, not %v", a.addr, l.peer.ID, want)
		}
		return l, err
	}
	if len(attempts) == 1 {
		// Nothing to race: no goroutine, no timer.
		l, err := attemptOne(ctx, attempts[0], 0)
		if err != nil {
			return nil, []error{err}
		}
		return l, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(attempts))
	start := func(i int) {
		a := attempts[i]
		go func() {
			l, err := attemptOne(rctx, a, a.t.FallbackAfter())
			results <- result{i, l, err}
		}()
	}
	firstErr := map[string]error{}
	var won *link
	start(0) // the first at once; the next after connectAttemptDelay
	next, running := 1, 1
	timer := time.NewTimer(connectAttemptDelay)
	defer timer.Stop()
	for won == nil && (next < len(attempts) || running > 0) {
		select {
		case <-timer.C:
			if next < len(attempts) {
				start(next)
				next++
				running++
				timer.Reset(connectAttemptDelay)
			}
		case r := <-results:
			running--
			if r.err == nil {
				won = r.l
				break
			}
			if a := attempts[r.i]; firstErr[a.addr] == nil {
				firstErr[a.addr] = r.err
			}
			if isRejection(r.err) || ctx.Err() != nil {
				next = len(attempts) // start nothing more; wait for the others
				cancel()
			} else if next < len(attempts) {
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				timer.Reset(0) // the next one now
			}
		}
	}
	cancel()
	if running > 0 {
		// Attempts still running end cancelled; one that won anyway
		// joins its Conn as a duplicate, which the peers resolve.
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for ; running > 0; running-- {
				if r := <-results; r.err == nil {
					n.attach(r.l)
				}
			}
		}()
	}
	if won != nil {
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

// interleaveFamilies orders addresses "host:port" alternating between
// address families, each family keeping its order, starting with the
// family of the first (RFC 8305, section 4).
func interleaveFamilies(addrs []string) []string {
	var v4, v6, other []string
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		switch {
		case err != nil:
			other = append(other, a)
		case ap.Addr().Unmap().Is4():
			v4 = append(v4, a)
		default:
			v6 = append(v6, a)
		}
	}
	first, second := v4, v6
	if len(addrs) > 0 && len(v6) > 0 && v6[0] == addrs[0] {
		first, second = v6, v4
	}
	out := make([]string, 0, len(addrs))
	for i := 0; i < max(len(first), len(second)); i++ {
		if i < len(first) {
			out = append(out, first[i])
		}
		if i < len(second) {
			out = append(out, second[i])
		}
	}
	return append(out, other...)
}
