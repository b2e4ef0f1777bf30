package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/tunnel"
)

// The tunnel rows (Options.Tunnel) measure nearnet on two userspace TCP/IP
// stacks joined by an in-memory packet pipe (nearnet.Config.Tunnel) next to
// nearnet on loopback sockets, in the same run: what the userspace stack
// costs.

// tunnelStreamGoal is the least stream throughput over the pipe, as a
// share of the same over loopback sockets.
const tunnelStreamGoal = 0.3

// newTunnelPair connects two nodes, each on its own stack (10.9.0.1 and
// 10.9.0.2 on a Pipe with MTU mtu), over tr.
func newTunnelPair(ctx context.Context, tr nearnet.Transport, mtu int) (*nnPair, func(), error) {
	da, db := tunnel.Pipe()
	sa, err := tunnel.New(da, tunnel.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}, MTU: mtu})
	if err != nil {
		return nil, nil, err
	}
	sb, err := tunnel.New(db, tunnel.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24")}, MTU: mtu})
	if err != nil {
		sa.Close()
		return nil, nil, err
	}
	stacks := func() { sa.Close(); sb.Close() }
	on := func(st *tunnel.Stack) func(*nearnet.Config) {
		return func(c *nearnet.Config) { c.Tunnel, c.ListenAddr, c.Hidden = st, "", false }
	}
	a, err := newNode(tr, on(sa))
	if err != nil {
		stacks()
		return nil, nil, err
	}
	b, err := newNode(tr, on(sb))
	if err != nil {
		a.Close()
		stacks()
		return nil, nil, err
	}
	p, err := connectPair(ctx, a, b, func(addr net.Addr) string {
		_, port, _ := net.SplitHostPort(addr.String())
		return net.JoinHostPort("10.9.0.2", port)
	})
	if err != nil {
		stacks()
		return nil, nil, err
	}
	return p, func() { p.Close(); stacks() }, nil
}

// tunnelRows measures 64 B ping-pong and stream throughput over the pipe,
// each next to the same on loopback sockets.
func tunnelRows(ctx context.Context, o Options) ([]Result, error) {
	n := o.scale(20000, 2000)
	ctx, cancel := deadline(ctx, 3*time.Minute)
	defer cancel()
	var loop, tun []time.Duration
	var err error
	if loop, err = NearnetPingPong(ctx, o.Transport, 64, n); err != nil {
		return nil, err
	}
	if tun, err = tunnelPingPong(ctx, o.Transport, 64, n); err != nil {
		return nil, err
	}
	const size = 1 << 20
	count := o.scale(2048, 256)
	dl, err := NearnetStreamBulk(ctx, o.Transport, size, count)
	if err != nil {
		return nil, err
	}
	// The pipe at Ethernet's MTU, and at loopback's (64 KiB, as the
	// baseline's sockets have it).
	dt1500, err := tunnelStreamBulk(ctx, o.Transport, 1500, size, count)
	if err != nil {
		return nil, err
	}
	dt64k, err := tunnelStreamBulk(ctx, o.Transport, 65535, size, count)
	if err != nil {
		return nil, err
	}
	total := int64(size) * int64(count)
	name := "nearnet on loopback"
	p50 := Result{Key: "tunnel_pingpong64_p50", Title: "tunnel: 64 B ping-pong, p50", Unit: "us",
		Nearnet: us(percentile(tun, 0.5)), Baseline: us(percentile(loop, 0.5)), BaselineName: name}
	st1500 := Result{Key: "tunnel_stream_throughput_mtu1500", Title: "tunnel: stream bulk, MTU 1500", Unit: "Gbit/s", HigherIsBetter: true,
		Nearnet: gbit(total, dt1500), Baseline: gbit(total, dl), BaselineName: name}
	st64k := Result{Key: "tunnel_stream_throughput_mtu64k", Title: "tunnel: stream bulk, MTU 64 KiB", Unit: "Gbit/s", HigherIsBetter: true,
		Nearnet: gbit(total, dt64k), Baseline: gbit(total, dl), BaselineName: name}
	goal := fmt.Sprintf("at least %.1fx %s", tunnelStreamGoal, name)
	met := func(r Result) bool { return r.Ratio >= tunnelStreamGoal }
	return []Result{finish(p50, "", nil), finish(st1500, goal, met), finish(st64k, goal, met)}, nil
}

func tunnelPingPong(ctx context.Context, tr nearnet.Transport, size, n int) ([]time.Duration, error) {
	p, done, err := newTunnelPair(ctx, tr, 0)
	if err != nil {
		return nil, err
	}
	defer done()
	return pingPongOn(ctx, p, size, n)
}

func tunnelStreamBulk(ctx context.Context, tr nearnet.Transport, mtu, size, count int) (time.Duration, error) {
	p, done, err := newTunnelPair(ctx, tr, mtu)
	if err != nil {
		return 0, err
	}
	defer done()
	return streamBulkOn(ctx, p, size, count)
}
