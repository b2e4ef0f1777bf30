package nearnet_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/bench"
	"github.com/nearnet/nearnet/security"
)

// Streams and resources against raw TLS 1.3 bulk, as the benchmarks in
// bench_test.go: compare the sub-benchmarks' MB/s. `nearnet bench` runs
// the file transfer between two processes and reports each side's peak
// RSS as well; BenchmarkResource runs both sides in this process.

func BenchmarkStreamBulk(b *testing.B) {
	nearnetOn(b, oneWayOn(1<<20, bench.NearnetStreamBulk))
	b.Run("rawTLSBulk", func(b *testing.B) { benchOneWay(b, 1<<20, bench.RawBulk) })
	b.Run("rawQUICBulk", func(b *testing.B) { benchOneWay(b, 1<<20, bench.RawQUICBulk) })
}

// BenchmarkResource sends a 64 MiB file from disk with SendResource and
// receives it with Accept into a directory on disk, each time over the
// same connection: both SHA-256s, the disk writes and the receiver's fsync
// included. rawTLSBulk is the same bytes over raw TLS 1.3, in 1 MiB writes.
func BenchmarkResource(b *testing.B) {
	const size = 64 << 20
	b.Run("nearnet", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		src := filepath.Join(b.TempDir(), "source.bin")
		writeBenchFile(b, src, size)
		dir := b.TempDir()
		ca, cb := benchConnPair(b, ctx)
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(size)
		for b.Loop() {
			errc := make(chan error, 1)
			go func() { _, err := ca.SendResource(ctx, "r.bin", f, size, nil); errc <- err }()
			in, err := cb.AcceptResource(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got, err := in.Accept(ctx, dir, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := os.Remove(got.Path); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("rawTLSBulk", func(b *testing.B) {
		b.SetBytes(size)
		d, err := bench.RawBulk(context.Background(), 1<<20, b.N*size>>20)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/d.Seconds(), "files/s")
	})
}

// benchConnPair connects two nodes on loopback (pre-shared-key mode); they
// close when b ends.
func benchConnPair(b *testing.B, ctx context.Context) (*nearnet.Conn, *nearnet.Conn) {
	b.Helper()
	key, err := security.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	node := func() *nearnet.Node {
		n, err := nearnet.NewNode(&nearnet.Config{Key: &key, ListenAddr: "127.0.0.1:0", Hidden: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		return n
	}
	na, nb := node(), node()
	if err := nb.Listen(ctx); err != nil {
		b.Fatal(err)
	}
	ca, err := na.Connect(ctx, nb.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	cb, err := nb.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return ca, cb
}

// writeBenchFile writes size bytes of content no compression or
// deduplication could shrink.
func writeBenchFile(b *testing.B, path string, size int) {
	b.Helper()
	buf := make([]byte, size)
	var x uint64 = 0x9e3779b97f4a7c15
	for i := 0; i+8 <= len(buf); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(buf[i:], x)
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		b.Fatal(err)
	}
}
