package bench

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nearnet/nearnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuickRun runs every measurement with a handful of samples and a
// 1 MiB file: it checks that each completes and produces sane figures,
// never how fast they are. The figures themselves are nearnet bench's
// (CI runs nearnet bench --quick once).
func TestQuickRun(t *testing.T) {
	for _, tr := range []nearnet.Transport{nearnet.TransportTCP, nearnet.TransportQUIC} {
		t.Run(tr.String(), func(t *testing.T) { quickRun(t, tr) })
	}
}

func quickRun(t *testing.T, tr nearnet.Transport) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs, err := Run(ctx, Options{tiny: true, FileSize: 1 << 20, Logf: t.Logf, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	want := 12 + 14 // with the file against the disk, and two groups of seven rows
	if _, ok := peakRSS(); ok {
		want += 2 // the file transfer's sender and receiver RSS
	}
	// The IPv6 link-local row needs a network namespace of its own: as
	// root there always is one.
	if slices.ContainsFunc(rs, func(r Result) bool { return r.Key == "browse6_to_ready_p50" }) {
		want++
	} else if os.Geteuid() == 0 {
		t.Error("the IPv6 link-local browse row was left out, as root")
	}
	if len(rs) != want {
		t.Fatalf("%d results, want %d", len(rs), want)
	}
	for _, r := range rs {
		if r.Unit == "%" {
			// A loss: 0 is sane (and then so is a ratio of 0), 100 is not.
			if !(r.Nearnet >= 0 && r.Nearnet < 100) || !(r.Baseline >= 0 && r.Baseline < 100) {
				t.Errorf("%s: nearnet %v baseline %v", r.Key, r.Nearnet, r.Baseline)
			}
			continue
		}
		if !(r.Nearnet > 0) || !(r.Baseline > 0) || !(r.Ratio > 0) {
			t.Errorf("%s: nearnet %v baseline %v ratio %v", r.Key, r.Nearnet, r.Baseline, r.Ratio)
		}
	}
}

// TestQuickTunnel runs the tunnel rows with a handful of samples: both
// complete and give sane figures.
func TestQuickTunnel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs, err := Run(ctx, Options{tiny: true, Logf: t.Logf, Tunnel: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d results, want 3", len(rs))
	}
	for _, r := range rs {
		if !(r.Nearnet > 0) || !(r.Baseline > 0) || !(r.Ratio > 0) {
			t.Errorf("%s: nearnet %v baseline %v ratio %v", r.Key, r.Nearnet, r.Baseline, r.Ratio)
		}
	}
}

// TestQuickICE runs the ICE rows (a direct path, and one relayed through
// a coturn it starts on loopback) with a handful of samples: both give
// sane figures, or, without coturn, one row says why they were left out.
func TestQuickICE(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := iceRows(ctx, Options{tiny: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 1 && rs[0].Note != "" {
		t.Skip(rs[0].Note)
	}
	if len(rs) != 3 {
		t.Fatalf("%d results, want 3", len(rs))
	}
	for _, r := range rs {
		t.Logf("%s: relayed %.1f direct %.1f %s (ratio %.2f)", r.Key, r.Nearnet, r.Baseline, r.Unit, r.Ratio)
		if !(r.Nearnet > 0) || !(r.Baseline > 0) || !(r.Ratio > 0) {
			t.Errorf("%s: relayed %v direct %v ratio %v", r.Key, r.Nearnet, r.Baseline, r.Ratio)
		}
	}
}
