package advert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nearnet/nearnet/discovery"
)

// Find runs browse until a sighting that matches (and is not a loss)
// comes, or ctx is done. browse calls see with each sighting: a, its kind
// and instance name, whether it is a nearnet peer, whether it matches.
// Not finding target, the error lists the nearnet peers browsing saw.
func Find[A any](ctx context.Context, target string, browse func(ctx context.Context, see func(a A, kind discovery.EventKind, name string, peer, match bool)) error) (A, error) {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var found, none A
	var ok bool
	var seen []string // the names browsing met, for the error
	berr := browse(bctx, func(a A, kind discovery.EventKind, name string, peer, match bool) {
		if kind != discovery.Lost && !ok && match && peer {
			found, ok = a, true
			cancel()
		}
		if kind == discovery.Found && peer && !slices.Contains(seen, name) {
			seen = append(seen, name)
		}
	})
	if ok {
		return found, nil
	}
	if err := ctx.Err(); err != nil {
		berr = err
	}
	if berr == nil { // browsing ended without an error or a cancel: not expected, but say so
		berr = errors.New("browsing ended")
	}
	if len(seen) > 0 {
		slices.Sort(seen)
		return none, fmt.Errorf("nearnet: no peer %q found on the network (peers seen: %s): %w", target, strings.Join(seen, ", "), berr)
	}
	return none, fmt.Errorf("nearnet: no peer %q found on the network (no nearnet peer seen): %w", target, berr)
}
