package transport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ConnectAttemptDelay is how long a connection attempt has before the next
// one starts beside it (RFC 8305, Happy Eyeballs: 250 ms recommended): a
// dead address family or a filtered address costs this, not a timeout.
const ConnectAttemptDelay = 250 * time.Millisecond

// Attempt is one address dialed over one transport.
type Attempt struct {
	Addr string
	T    Transport
}

// Attempts lists the attempts of a race to addrs over the transports of
// order: every address over the first transport (address families
// interleaved), then over the next.
func Attempts(addrs []string, order []Transport) []Attempt {
	var out []Attempt
	ordered := InterleaveFamilies(addrs)
	for _, t := range order {
		for _, a := range ordered {
			out = append(out, Attempt{a, t})
		}
	}
	return out
}

// Race runs attempts in the way of Happy Eyeballs (RFC 8305): started one
// after another, each ConnectAttemptDelay after the one before or as soon
// as it failed; the first to give a link (try's L) wins and the others are
// cancelled. An error final says is final (a rejection: the peer would
// repeat it) ends the race. A single attempt runs inline, with no
// goroutine or timer. Attempts still running when the race ends finish on
// a goroutine that spawn starts; one that wins anyway goes to late. It
// returns the winner, or the first error of each address.
func Race[L any](ctx context.Context, attempts []Attempt, try func(context.Context, Attempt, time.Duration) (L, error),
	final func(error) bool, late func(L), spawn func(func())) (won L, ok bool, firstErr map[string]error) {
	firstErr = map[string]error{}
	if len(attempts) == 1 {
		l, err := try(ctx, attempts[0], 0)
		if err != nil {
			firstErr[attempts[0].Addr] = err
			return won, false, firstErr
		}
		return l, true, nil
	}
	type result struct {
		i   int
		l   L
		err error
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(attempts))
	start := func(i int) {
		a := attempts[i]
		go func() {
			l, err := try(rctx, a, a.T.FallbackAfter())
			results <- result{i, l, err}
		}()
	}
	start(0) // the first at once; the next after ConnectAttemptDelay
	next, running := 1, 1
	timer := time.NewTimer(ConnectAttemptDelay)
	defer timer.Stop()
	for !ok && (next < len(attempts) || running > 0) {
		select {
		case <-timer.C:
			if next < len(attempts) {
				start(next)
				next++
				running++
				timer.Reset(ConnectAttemptDelay)
			}
		case r := <-results:
			running--
			if r.err == nil {
				won, ok = r.l, true
				break
			}
			if a := attempts[r.i]; firstErr[a.Addr] == nil {
				firstErr[a.Addr] = r.err
			}
			if final(r.err) || ctx.Err() != nil {
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
		// goes to late (a duplicate, which the peers resolve).
		spawn(func() {
			for ; running > 0; running-- {
				if r := <-results; r.err == nil {
					late(r.l)
				}
			}
		})
	}
	return won, ok, firstErr
}

// InterleaveFamilies orders addresses "host:port" alternating between
// address families, each family keeping its order, starting with the
// family of the first (RFC 8305, section 4).
func InterleaveFamilies(addrs []string) []string {
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

// ListenAll opens a listener of each transport on addr, all on the same
// port number, so that "host:port" and an advertisement's port name any
// of them: with port 0, a few system-chosen ports of the first are tried
// until the same port is free for the others too.
func ListenAll(ctx context.Context, ts []Transport, addr string, acc Acceptor) ([]Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		first, err := ts[0].Listen(ctx, addr, acc)
		if err != nil {
			return nil, err
		}
		lns := []Listener{first}
		_, p, _ := net.SplitHostPort(first.Addr().String())
		for _, t := range ts[1:] {
			ln, lerr := t.Listen(ctx, net.JoinHostPort(host, p), acc)
			if lerr != nil {
				err = fmt.Errorf("%s on port %s (the %s listener's): %w", t.Name(), p, ts[0].Name(), lerr)
				break
			}
			lns = append(lns, ln)
		}
		if err == nil {
			return lns, nil
		}
		for _, ln := range lns {
			ln.Close()
		}
		if port != "0" || try == 15 {
			return nil, err
		}
	}
}
