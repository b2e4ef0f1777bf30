package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nearnet/nearnet/proxy"
)

const proxyRankHelp = `Connects to --target through each proxy URL (http://user:pass@host:port,
https://, socks5://, socks5h://), at most --concurrency at a time, each within
--timeout, and prints the usable proxies fastest first with the time from the
start of the dial to the connection through it, then those that failed with
why. Passwords are never printed. One measurement each: run it again for a
steadier ranking. It exits 1 when no proxy is usable.

With --json, one object per proxy: {"event":"proxy","proxy":URL,
"latency_ms":N,"error":TEXT} (latency_ms 0 for a failure, error "" for a
usable proxy).`

// proxyEvent is one proxy measured by proxy-rank.
type proxyEvent struct {
	head
	Proxy     string  `json:"proxy"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error"`
}

func (e *proxyEvent) text() string {
	if e.Error != "" {
		return fmt.Sprintf("%-10s  %s: %s", "failed", clean(e.Proxy), clean(e.Error))
	}
	return fmt.Sprintf("%8.1fms  %s", e.LatencyMS, clean(e.Proxy))
}

// runProxyRank: see proxyRankHelp.
func runProxyRank(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("proxy-rank")
	fs.uses("json")
	fs.summary = proxyRankHelp
	fs.positional = "URL"
	target := fs.String("target", "", "measure connections to `HOST:PORT` (required)")
	concurrency := fs.Int("concurrency", proxy.DefaultRankConcurrency, "measure at most `N` proxies at once")
	timeout := durationValue(proxy.DefaultRankTimeout)
	fs.Var(&timeout, "timeout", "give each proxy at most `D` to connect")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	switch {
	case *target == "":
		return fs.usageError("--target HOST:PORT is required: the address to connect to through each proxy")
	case len(fs.args) == 0:
		return fs.usageError("no proxy URL given: pass one or more after the flags")
	case *concurrency < 1:
		return fs.usageError(fmt.Sprintf("invalid --concurrency %d: must be at least 1", *concurrency))
	case timeout == 0:
		return fs.usageError("invalid --timeout 0: must be more than 0")
	}
	if _, _, err := net.SplitHostPort(*target); err != nil {
		return fs.usageError(fmt.Sprintf("invalid --target %q: want HOST:PORT", *target))
	}
	results, err := proxy.Rank(ctx, fs.args, *target, &proxy.RankOptions{
		Concurrency: *concurrency, Timeout: time.Duration(timeout)})
	if results == nil && err != nil {
		return fs.usageError(strings.TrimPrefix(err.Error(), "proxy: "))
	}
	out := newPrinter(e.stdout, fs.g.json)
	usable := 0
	for _, r := range results {
		ev := &proxyEvent{head: head{Event: "proxy"}, Proxy: r.Proxy}
		if r.Err != nil {
			ev.Error = strings.TrimPrefix(r.Err.Error(), "proxy: ")
		} else {
			usable++
			ev.LatencyMS = float64(r.Latency.Microseconds()) / 1000
		}
		out.print("", ev)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("proxy-rank: %w", err)
	}
	if usable == 0 && ctx.Err() == nil {
		return fmt.Errorf("proxy-rank: no proxy could connect to %s (%d tried)", *target, len(results))
	}
	return nil
}
