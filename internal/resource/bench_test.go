package resource

import (
	"io"
	"os"
	"testing"
)

// BenchmarkTransfer sends 256 MiB of generated content over loopback TCP
// into a file, hashing and syncing on the way: the whole receive path.
func BenchmarkTransfer(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	b.SetBytes(size)
	for b.Loop() {
		s, r := tcpPair(b)
		out := transfer(b, s, r, Offer{Name: "bench.bin", Size: size}, io.NewSectionReader(genReader{size}, 0, size), dir, nil)
		if out.sendErr != nil || out.recvErr != nil {
			b.Fatalf("send %v, receive %v", out.sendErr, out.recvErr)
		}
		if err := os.Remove(out.rcv.Path); err != nil {
			b.Fatal(err)
		}
	}
}
