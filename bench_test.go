package nearnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/bench"
)

// The benchmarks run nearnet and its raw TLS 1.3 baseline side by side:
// compare the sub-benchmarks' figures (or run `nearnet bench`, which prints
// the ratios).

// nearnetOn runs nearnet's sub-benchmark over TCP and over QUIC.
func nearnetOn(b *testing.B, run func(b *testing.B, tr nearnet.Transport)) {
	for _, tr := range []nearnet.Transport{nearnet.TransportTCP, nearnet.TransportQUIC} {
		b.Run("nearnet-"+tr.String(), func(b *testing.B) { run(b, tr) })
	}
}

func oneWayOn(size int, f func(context.Context, nearnet.Transport, int, int) (time.Duration, error)) func(*testing.B, nearnet.Transport) {
	return func(b *testing.B, tr nearnet.Transport) {
		benchOneWay(b, size, func(ctx context.Context, size, n int) (time.Duration, error) { return f(ctx, tr, size, n) })
	}
}

func benchOneWay(b *testing.B, size int, run func(context.Context, int, int) (time.Duration, error)) {
	b.SetBytes(int64(size))
	d, err := run(context.Background(), size, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/d.Seconds(), "msg/s")
}

func BenchmarkMessages64(b *testing.B) {
	nearnetOn(b, oneWayOn(64, bench.NearnetOneWay))
	b.Run("rawTLS", func(b *testing.B) { benchOneWay(b, 64, bench.RawOneWay) })
}

func BenchmarkMessages1K(b *testing.B) {
	nearnetOn(b, oneWayOn(1024, bench.NearnetOneWay))
	b.Run("rawTLS", func(b *testing.B) { benchOneWay(b, 1024, bench.RawOneWay) })
}

func BenchmarkMessages1M(b *testing.B) {
	nearnetOn(b, oneWayOn(1<<20, bench.NearnetOneWay))
	b.Run("rawTLSBulk", func(b *testing.B) { benchOneWay(b, 1<<20, bench.RawBulk) })
	b.Run("rawQUICBulk", func(b *testing.B) { benchOneWay(b, 1<<20, bench.RawQUICBulk) })
}

func benchSamples(b *testing.B, run func(context.Context, int) ([]time.Duration, error)) {
	ds, err := run(context.Background(), b.N)
	if err != nil {
		b.Fatal(err)
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(ds)), "us/op")
}

func BenchmarkPingPong64(b *testing.B) {
	nearnetOn(b, func(b *testing.B, tr nearnet.Transport) {
		benchSamples(b, func(ctx context.Context, n int) ([]time.Duration, error) {
			return bench.NearnetPingPong(ctx, tr, 64, n)
		})
	})
	b.Run("rawTLS", func(b *testing.B) {
		benchSamples(b, func(ctx context.Context, n int) ([]time.Duration, error) { return bench.RawPingPong(ctx, 64, n) })
	})
	b.Run("rawQUIC", func(b *testing.B) {
		benchSamples(b, func(ctx context.Context, n int) ([]time.Duration, error) { return bench.RawQUICPingPong(ctx, 64, n) })
	})
}

func BenchmarkConnect(b *testing.B) {
	nearnetOn(b, func(b *testing.B, tr nearnet.Transport) {
		benchSamples(b, func(ctx context.Context, n int) ([]time.Duration, error) { return bench.NearnetConnect(ctx, tr, n) })
	})
	b.Run("rawTLS", func(b *testing.B) { benchSamples(b, bench.RawConnect) })
	b.Run("rawQUIC", func(b *testing.B) { benchSamples(b, bench.RawQUICConnect) })
}

func BenchmarkBrowseToReady(b *testing.B) {
	nearnetOn(b, func(b *testing.B, tr nearnet.Transport) {
		benchSamples(b, func(ctx context.Context, n int) ([]time.Duration, error) {
			return bench.NearnetBrowseToReady(ctx, tr, n)
		})
	})
}

func BenchmarkDatagrams1200(b *testing.B) {
	run := func(b *testing.B, f func(context.Context, int, int) (bench.DatagramRun, error)) {
		r, err := f(context.Background(), 1200, b.N)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.Rate(), "dgram/s")
		b.ReportMetric(r.LossPercent(), "loss%")
	}
	nearnetOn(b, func(b *testing.B, tr nearnet.Transport) {
		run(b, func(ctx context.Context, size, n int) (bench.DatagramRun, error) {
			return bench.NearnetDatagrams(ctx, tr, size, n)
		})
	})
	b.Run("rawUDP", func(b *testing.B) { run(b, bench.RawDatagrams) })
	b.Run("rawQUIC", func(b *testing.B) { run(b, bench.RawQUICDatagrams) })
}
