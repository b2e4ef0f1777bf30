package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nearnet/nearnet/internal/bench"
)

// runBench measures nearnet against raw TLS 1.3 (raw UDP for datagrams),
// or over QUIC against raw quic-go (--transport quic), in one process on
// loopback and prints each figure with its ratio to the
// baseline. With --json, one object per result (keys documented in
// README.md).
func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("bench")
	fs.uses("json", "transport")
	fs.summary = "Runs in one process on loopback (discovery on the loopback interface only).\n" +
		"Each figure comes with the same figure for raw TLS 1.3 over TCP (for datagrams,\n" +
		"raw UDP), measured in the same run; with --transport quic, nearnet runs over QUIC\n" +
		"and the baselines are raw quic-go (streams, DATAGRAM frames)."
	quick := fs.Bool("quick", false, "run each measurement about a tenth as long (noisier)")
	tun := fs.Bool("tunnel", false, "measure nearnet on userspace TCP/IP stacks joined by an in-memory packet pipe (--tun's stack) "+
		"against nearnet on loopback sockets, over --transport: ping-pong and stream throughput")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	out := newPrinter(e.stdout, false)
	o := bench.Options{Quick: *quick, Transport: fs.g.transport.t, Tunnel: *tun}
	if !fs.g.json {
		out.line(fmt.Sprintf("%-38s %12s %12s %-8s %7s  %s", "measurement", "nearnet", "baseline", "unit", "ratio", "goal"))
		o.Logf = nil
	}
	results, err := bench.Run(ctx, o)
	for _, r := range results {
		if fs.g.json {
			b, _ := json.Marshal(struct {
				Event string `json:"event"`
				bench.Result
			}{"bench", r})
			out.line(string(b))
			continue
		}
		if r.Note != "" {
			out.line(fmt.Sprintf("%-38s %s", r.Title, r.Note))
			continue
		}
		goal := r.Goal
		if r.GoalMet != nil {
			if *r.GoalMet {
				goal += " (met)"
			} else {
				goal += " (NOT met)"
			}
		}
		ratio := fmt.Sprintf("%7.2f", r.Ratio)
		if r.Baseline == 0 {
			ratio = fmt.Sprintf("%7s", "-") // no ratio to a baseline of 0 (no loss)
		}
		out.line(fmt.Sprintf("%-38s %12.1f %12.1f %-8s %s  %s", r.Title, r.Nearnet, r.Baseline, r.Unit, ratio, goal))
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
