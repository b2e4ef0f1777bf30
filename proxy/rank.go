package proxy

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Defaults for [RankOptions].
const (
	DefaultRankConcurrency = 4
	DefaultRankTimeout     = 5 * time.Second
)

// RankOptions tune [Rank]. The zero value (or nil) means the defaults.
type RankOptions struct {
	// Concurrency is the most proxies measured at once. If zero,
	// DefaultRankConcurrency (4). Negative is an error.
	Concurrency int
	// Timeout bounds the measurement of one proxy, dial and Probe. If
	// zero, DefaultRankTimeout (5 s). Negative is an error.
	Timeout time.Duration
	// Probe, if set, runs on each connection once it is made, and its time
	// counts in the latency; an error makes the proxy unusable. The
	// connection's deadline is set to the end of Timeout and it is closed
	// after Probe returns. Use it to measure more than the connection, for
	// example a TLS handshake or a request and its answer.
	Probe func(ctx context.Context, c net.Conn) error
	// Forward makes the connections to the proxies, as for [New].
	Forward *net.Dialer
}

// Result is the measurement of one proxy by [Rank].
type Result struct {
	Proxy   string        // the proxy URL as given to Rank, password redacted
	Latency time.Duration // from the start of the dial to a connection (and Probe's end); 0 if Err is set
	Err     error         // why the proxy is unusable; a *URLError, an *Error, or Probe's error
}

// Rank measures how long a connection to target takes through each of
// proxies (URLs as for [Parse]), at most opts.Concurrency at a time, each
// within opts.Timeout, and returns one Result per proxy: the usable ones
// first, fastest first, then the failures in the order given. One
// measurement each: for a steadier ranking, run Rank a few times.
//
// The error is for invalid options, or ctx's error if it ended before every
// proxy was measured (those not measured then have it as their Err).
func Rank(ctx context.Context, proxies []string, target string, opts *RankOptions) ([]Result, error) {
	var o RankOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Concurrency < 0:
		return nil, fmt.Errorf("proxy: RankOptions.Concurrency is %d; want 0 (default %d) or more", o.Concurrency, DefaultRankConcurrency)
	case o.Concurrency == 0:
		o.Concurrency = DefaultRankConcurrency
	}
	switch {
	case o.Timeout < 0:
		return nil, fmt.Errorf("proxy: RankOptions.Timeout is %v; want 0 (default %v) or more", o.Timeout, DefaultRankTimeout)
	case o.Timeout == 0:
		o.Timeout = DefaultRankTimeout
	}
	if _, _, err := splitTarget(target); err != nil {
		return nil, fmt.Errorf("proxy: Rank: target %q: %w", target, err)
	}

	results := make([]Result, len(proxies))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Concurrency, len(proxies)) {
		wg.Go(func() {
			for i := range jobs {
				results[i] = measure(ctx, proxies[i], target, &o)
			}
		})
	}
	var err error
	i := 0
feed:
	for ; i < len(proxies); i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	for ; i < len(proxies); i++ {
		red, _ := redactRaw(proxies[i])
		results[i] = Result{Proxy: red, Err: err}
	}

	slices.SortStableFunc(results, func(a, b Result) int {
		switch {
		case a.Err == nil && b.Err == nil:
			return cmp.Compare(a.Latency, b.Latency)
		case a.Err == nil:
			return -1
		case b.Err == nil:
			return 1
		}
		return 0
	})
	return results, err
}

func measure(ctx context.Context, rawURL, target string, o *RankOptions) Result {
	red, _ := redactRaw(rawURL)
	r := Result{Proxy: red}
	if err := ctx.Err(); err != nil {
		r.Err = err
		return r
	}
	d, err := parse(rawURL, o.Forward)
	if err != nil {
		r.Err = err
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		r.Err = err
		return r
	}
	defer c.Close()
	if o.Probe != nil {
		dl, _ := ctx.Deadline()
		c.SetDeadline(dl)
		if err := o.Probe(ctx, c); err != nil {
			r.Err = fmt.Errorf("probe through %s: %w", red, err)
			return r
		}
	}
	r.Latency = time.Since(start)
	return r
}
