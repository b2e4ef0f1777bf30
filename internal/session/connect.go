package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Dialer is what Connect needs of the node for one peer.
type Dialer struct {
	Round       func() (*Path, []error) // one round of attempts: a link, or one error per address
	Final       func(err error) bool    // a refusal, which trying again would only repeat
	Waiting     func(err error) error   // the error a waiting session shows for a round's
	Retry       bool                    // keep trying while ctx allows (Config.RetryConnect)
	PathChanged func() <-chan struct{}  // closed at the next path change
	NodeDone    <-chan struct{}
}

// Connect runs rounds of d until one gives a link, which it returns for
// the caller to attach. Between rounds (with d.Retry, after failures that
// are not final) s, if not nil, is waiting with the round's error, and the
// next round comes after a backoff, or at once when the network changes or
// on Restart. ready reports that s was made ready meanwhile by another
// link. Otherwise errs are the last round's errors, then ctx's if it ended
// the wait.
func Connect(ctx context.Context, s *Session, d Dialer) (l *Path, ready bool, errs []error) {
	for attempt := 0; ; attempt++ {
		l, errs1 := d.Round()
		if l != nil {
			return l, false, nil
		}
		errs = append(errs[:0], errs1...)
		last := errs[len(errs)-1]
		if i := slices.IndexFunc(errs, d.Final); i >= 0 {
			last = errs[i] // the peer answered: final
		}
		if !d.Retry || d.Final(last) || ctx.Err() != nil {
			return nil, false, errs
		}
		var retry <-chan struct{}
		if s != nil {
			if !s.Wait(d.Waiting(last)) {
				return nil, true, nil // an incoming link made it ready meanwhile
			}
			retry = s.RetryWake()
		}
		t := time.NewTimer(Backoff(attempt))
		select {
		case <-t.C:
		case <-retry:
		case <-d.PathChanged():
		case <-ctx.Done():
		case <-d.NodeDone:
		}
		t.Stop()
		if ctx.Err() != nil {
			return nil, false, append(errs, ctx.Err())
		}
		select {
		case <-d.NodeDone:
			return nil, false, append(errs, ctx.Err())
		default:
		}
		if s != nil {
			s.Retry()
		}
	}
}

// JoinErrors makes one error of a failed Connect's errs: with retry and
// ctxErr (the wait ended by ctx), ctx's error, last in errs, is folded
// into the error before it.
func JoinErrors(errs []error, retry bool, ctxErr error) error {
	if retry && ctxErr != nil && len(errs) > 1 {
		errs = slices.Clone(errs[:len(errs)-1])
		errs[len(errs)-1] = fmt.Errorf("%w (gave up waiting: %v)", errs[len(errs)-1], ctxErr)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
