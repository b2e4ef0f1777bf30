// Package bench measures nearnet against raw TLS 1.3 over TCP (and its
// datagrams against raw UDP) in the same process and the same run, so that
// every figure comes with its ratio to a baseline measured under the same
// conditions. `nearnet bench` prints what Run returns; the Benchmark
// functions in the nearnet package use the same pieces under `go test
// -bench`.
//
// Everything runs on loopback (127.0.0.1; discovery on the loopback
// interface only) and every loop is bounded by a count and a deadline.
// The one exception to "one process" is the file transfer (NearnetFile):
// its sender and receiver are child processes, so that each side's peak
// RSS is its own; it needs twice the file's size free in the default
// temporary directory, and removes what it wrote.
package bench

import (
	"context"
	"sort"
	"time"

	"github.com/nearnet/nearnet"
)

// Result is one measurement of nearnet and of the baseline.
type Result struct {
	Key            string  `json:"key"`      // stable name, e.g. "msg64_rate"
	Title          string  `json:"title"`    // human-readable
	Unit           string  `json:"unit"`     // "msg/s", "us", "Gbit/s", "ms", "dgram/s", "%"
	Nearnet        float64 `json:"nearnet"`  // nearnet's figure
	Baseline       float64 `json:"baseline"` // the baseline's figure
	BaselineName   string  `json:"baseline_name"`
	HigherIsBetter bool    `json:"higher_is_better"`
	Ratio          float64 `json:"ratio"`          // Nearnet / Baseline; 0 when Baseline is 0
	Goal           string  `json:"goal,omitempty"` // the target, in words
	GoalMet        *bool   `json:"goal_met,omitempty"`
	Note           string  `json:"note,omitempty"` // why a row was left out (then its figures are 0)
}

// Options sizes a run.
type Options struct {
	// Quick shrinks every measurement about tenfold (for tests and CI).
	Quick bool
	// FileSize, if set, is the file measurement's size instead of 1 GiB
	// (64 MiB with Quick).
	FileSize int64
	// Transport is the transport nearnet's rows run over: TransportTCP
	// (raw TLS 1.3 and raw UDP baselines) or TransportQUIC (raw quic-go
	// baselines). TransportAuto, the zero value, measures TCP, which it
	// dials first.
	Transport nearnet.Transport
	// Tunnel measures nearnet on userspace TCP/IP stacks over an in-memory
	// packet pipe (nearnet.Config.Tunnel) against nearnet on loopback
	// sockets, over Transport, instead of the other rows.
	Tunnel bool
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)

	// tiny runs every measurement with a handful of samples: the package's
	// tests prove that the harness works, and leave the figures to
	// nearnet bench.
	tiny bool
}

func (o Options) scale(full, quick int) int {
	switch {
	case o.tiny:
		return min(quick, max(quick/1000, 10))
	case o.Quick:
		return quick
	}
	return full
}

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

func finish(r Result, goal string, met func(r Result) bool) Result {
	if r.Baseline != 0 {
		r.Ratio = r.Nearnet / r.Baseline
	}
	if goal != "" {
		r.Goal = goal
		ok := met(r)
		r.GoalMet = &ok
	}
	return r
}

// Run measures everything and returns the results in a fixed order.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Transport == nearnet.TransportAuto {
		o.Transport = nearnet.TransportTCP
	}
	steps := []func(context.Context, Options) ([]Result, error){
		connect, rate64, rate1K, pingPong, bulk1M, streamBulk, file, browseToReady, browseFamilies, datagrams1200, groups, iceRows,
	}
	if o.tiny {
		steps = steps[:len(steps)-1] // TestQuickICE runs the ICE rows once, not per transport
	}
	if o.Tunnel {
		steps = steps[:0]
		steps = append(steps, tunnelRows)
	}
	var out []Result
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		rs, err := step(ctx, o)
		if err != nil {
			return out, err
		}
		for _, r := range rs {
			o.logf("%-38s nearnet %10.1f %-6s  %s %10.1f  ratio %.2f", r.Title, r.Nearnet, r.Unit, r.BaselineName, r.Baseline, r.Ratio)
		}
		out = append(out, rs...)
	}
	return out, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func deadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
