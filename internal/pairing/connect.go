package pairing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/transport"
)

// Dialing is what a pairing's Connect uses of the node.
type Dialing struct {
	Dials       *session.Dials
	Resolve     func(ctx context.Context, target string) (addrs, offered []string, err error) // a PeerID or an instance name
	NoTransport func(offered []string) error                                                  // this node dials none of offered
	Start       func()                                                                        // before the first dial (the path monitor)
	Stop        func(error) bool                                                              // an error that ends the dialing (a rejection)
	Unwrap      func(error) error                                                             // the error Connect returns for the first one
}

// runKey carries the State a dial pairs by (Connect) to the dial.
type runKey struct{}

// RunFor returns the pairing run a dial with ctx is to carry (as a
// session.Path's Pairing), or nil.
func RunFor[P any](ctx context.Context) any {
	if s, ok := ctx.Value(runKey{}).(*State[P]); ok {
		return &Run[P]{S: s}
	}
	return nil
}

// Connect dials target ("host:port", a PeerID or an instance name) and
// pairs by s with it. It always dials, and tries the peer's addresses one
// at a time, the families interleaved (each run is one guess at the code),
// until one succeeds, a rejection stops it or ctx ends. It returns the
// paired link.
func (pr *Pairer[P]) Connect(ctx context.Context, s *State[P], target string) (*session.Path, error) {
	d := &pr.Dialing
	var addrs, offered []string
	if _, port, err := net.SplitHostPort(target); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("nearnet: Connect %q: bad port", target)
		}
		addrs = []string{target}
	} else if addrs, offered, err = d.Resolve(ctx, target); err != nil {
		return nil, err
	}
	order := d.Dials.Order(offered)
	if len(order) == 0 {
		return nil, d.NoTransport(offered)
	}
	d.Start()
	pctx := context.WithValue(ctx, runKey{}, s)
	var first error
	for _, addr := range transport.InterleaveFamilies(addrs) {
		l, err := d.Dials.Via(pctx, order, addr, nil)
		if err == nil {
			return l, nil
		}
		if first == nil {
			first = err
		}
		if d.Stop(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, d.Unwrap(first)
}

// Install makes p the running pairing in cur, unless one runs there
// (live).
func Install[T any](cur *atomic.Pointer[T], p *T, live func(*T) bool) error {
	for {
		old := cur.Load()
		if old != nil && live(old) {
			return errors.New("nearnet: this node is already pairing; close that Pairing first")
		}
		if cur.CompareAndSwap(old, p) {
			return nil
		}
	}
}
