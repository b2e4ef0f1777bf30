package stream

import "context"

// Take returns the next of q, ready ones first, unless the connection
// ended (endErr) or ctx is done before one comes; take records it as the
// application's.
func Take[T any](ctx context.Context, q <-chan T, ended <-chan struct{}, endErr func() error, take func(T)) (T, error) {
	var zero T
	select {
	case v := <-q:
		take(v)
		return v, nil
	default:
	}
	select {
	case v := <-q:
		take(v)
		return v, nil
	case <-ended:
		return zero, endErr()
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Each calls f on each open stream of t for which keep(taken) holds.
func (t *Table[S]) Each(keep func(taken bool) bool, f func(S)) {
	for _, s := range t.Where(keep) {
		f(s)
	}
}
