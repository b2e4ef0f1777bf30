package nearnet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

var errNoTransport = errors.New("nearnet: the peer offers no transport this node dials")

// dialRace dials addrs over the transports of order, racing them in the
// way of Happy Eyeballs (transport.Race): every address over the first
// transport (address families interleaved), then over the next; the first
// to give a link wins. want, if not zero, is the peer the link must lead
// to. It returns the link, or one error per address (its first
// transport's, as session.Dials.Via).
func (n *Node) dialRace(ctx context.Context, addrs []string, order []transport.Transport, want PeerID) (*link, []error) {
	try := func(ctx context.Context, a transport.Attempt, limit time.Duration) (*link, error) {
		l, err := n.dialer.Dial(ctx, a.T, a.Addr, nil, limit)
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
