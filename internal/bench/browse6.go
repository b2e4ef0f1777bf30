package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/nearnet/nearnet"
)

// Browse-to-ready over IPv6 link-local addresses against the same over
// IPv4, on a veth pair: IPv6 multicast does not work on loopback, so this
// row needs a link. It runs in a bench child started in a network
// namespace of its own (unshare -n as root, unshare -rn otherwise), which
// makes two veth pairs there, one IPv4-only and one IPv6-only (link-local,
// no duplicate address detection), with a node on each end: everything
// stays inside that namespace. Where no namespace can be made, the row is
// left out with a note.

// vethPairs are the two pairs the child makes: (browser's end, peer's end).
var vethPairs = map[string][2]string{"ipv4": {"nnb4a", "nnb4b"}, "ipv6": {"nnb6a", "nnb6b"}}

func browseFamilies(ctx context.Context, o Options) ([]Result, error) {
	n := o.scale(20, 5)
	ctx, cancel := deadline(ctx, 2*time.Minute)
	defer cancel()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		o.logf("browse over IPv6 link-local: left out (no unshare(1) to make a network namespace)")
		return nil, nil
	}
	flags := "-rn"
	if os.Geteuid() == 0 {
		flags = "-n"
	}
	c, err := startChildVia(ctx, []string{unshare, flags, "--"}, childArgs{Role: "browse-veth", Transport: o.Transport.String(), Count: n})
	if err != nil {
		return nil, err
	}
	defer c.kill()
	r, err := c.result()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || r.Error != "" {
			o.logf("browse over IPv6 link-local: left out (%v)", err)
			return nil, nil
		}
		return nil, err
	}
	v4, v6 := nsDurations(r.Samples4), nsDurations(r.Samples6)
	res := Result{Key: "browse6_to_ready_p50", Title: "browse to ready, IPv6 link-local, p50", Unit: "ms",
		Nearnet: float64(percentile(v6, 0.5)) / 1e6, Baseline: float64(percentile(v4, 0.5)) / 1e6,
		BaselineName: "the same over IPv4 (a veth pair)"}
	return []Result{finish(res, "within 1.2x of IPv4", func(r Result) bool { return r.Ratio <= 1.2 })}, nil
}

func nsDurations(ns []int64) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, d := range ns {
		out[i] = time.Duration(d)
	}
	return out
}

// childBrowseVeth runs in the child's own network namespace: it makes the
// veth pairs and measures browse-to-ready over each family.
func childBrowseVeth(ctx context.Context, a childArgs) (childReport, error) {
	tr, err := nearnet.ParseTransport(a.Transport)
	if err != nil {
		return childReport{}, err
	}
	setup := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"},
	}
	for fam, p := range vethPairs {
		setup = append(setup, []string{"ip", "link", "add", p[0], "type", "veth", "peer", "name", p[1]})
		if fam == "ipv4" {
			for i, end := range p {
				// Both ends are this namespace's: a packet from the other
				// end has a local source address, which IPv4 drops unless
				// told to accept it.
				setup = append(setup,
					[]string{"sysctl", "-q", "-w", "net.ipv6.conf." + end + ".disable_ipv6=1",
						"net.ipv4.conf." + end + ".accept_local=1", "net.ipv4.conf." + end + ".rp_filter=0"},
					[]string{"ip", "addr", "add", fmt.Sprintf("10.77.0.%d/24", i+1), "dev", end})
			}
		}
		setup = append(setup, []string{"ip", "link", "set", p[0], "up"}, []string{"ip", "link", "set", p[1], "up"})
	}
	for _, cmd := range setup {
		if out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			return childReport{}, fmt.Errorf("%v: %v %s", cmd, err, out)
		}
	}
	var r childReport
	for _, fam := range []string{"ipv4", "ipv6"} {
		p := vethPairs[fam]
		ds, err := browseToReadyOn(ctx, tr, a.Count, p[0], p[1])
		if err != nil {
			return childReport{}, fmt.Errorf("%s: %w", fam, err)
		}
		for _, d := range ds {
			if fam == "ipv4" {
				r.Samples4 = append(r.Samples4, int64(d))
			} else {
				r.Samples6 = append(r.Samples6, int64(d))
			}
		}
	}
	return r, nil
}
