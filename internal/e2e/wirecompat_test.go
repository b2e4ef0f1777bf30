package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/filetest"
	"github.com/nearnet/nearnet/internal/netns"
)

// wireBaseline is a commit whose binary speaks the wire protocol this one
// must keep speaking: the last one before the transport seam and the
// session split (issue "One seam for every path"). Move it forward only
// when the protocol changes on purpose (PROTOCOL.md's version with it).
const wireBaseline = "2ca01b7c3751c70cfc70819ba4dfcb14110e29a8"

var baseline struct {
	once      sync.Once
	bin, skip string
	err       error
}

// baselineCLI builds cmd/nearnet as of wireBaseline, once, from this
// repository's history (git archive: the work tree is not touched). The
// test skips where the history is not there (a shallow clone).
func baselineCLI(t testing.TB) string {
	t.Helper()
	baseline.once.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			baseline.err = err
			return
		}
		if _, err := exec.LookPath("git"); err != nil {
			baseline.skip = "no git to build the baseline binary"
			return
		}
		if exec.Command("git", "-C", root, "cat-file", "-e", wireBaseline+"^{commit}").Run() != nil {
			baseline.skip = "commit " + wireBaseline[:12] + " is not in this clone's history (shallow?)"
			return
		}
		dir, err := os.MkdirTemp("", "nearnet-baseline-")
		if err != nil {
			baseline.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		archive := exec.CommandContext(ctx, "sh", "-c", "git -C \"$1\" archive \"$2\" | tar -x -C \"$3\"", "sh", root, wireBaseline, dir)
		if out, err := archive.CombinedOutput(); err != nil {
			baseline.err = fmt.Errorf("git archive %s: %v\n%s", wireBaseline, err, out)
			return
		}
		bin := filepath.Join(dir, "nearnet-baseline")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/nearnet")
		build.Dir = dir
		if out, err := build.CombinedOutput(); err != nil {
			baseline.err = fmt.Errorf("building the baseline: %v\n%s", err, out)
			return
		}
		baseline.bin = bin
	})
	if baseline.skip != "" {
		t.Skip(baseline.skip)
	}
	if baseline.err != nil {
		t.Fatal(baseline.err)
	}
	return baseline.bin
}

// TestWireCompatibleWithBaseline: a binary built from wireBaseline and this
// one interoperate both ways, over both transports: chat messages,
// datagrams and a file with its SHA-256.
func TestWireCompatibleWithBaseline(t *testing.T) {
	t.Parallel()
	bins := map[string]string{"this": cli(t), "baseline": baselineCLI(t)}
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	key := keyFile(t, a)
	for _, tr := range []string{"tcp", "quic"} {
		for _, roles := range [][2]string{{"baseline", "this"}, {"this", "baseline"}} {
			listens, dials := roles[0], roles[1]
			t.Run(fmt.Sprintf("%s/%s listens, %s dials", tr, listens, dials), func(t *testing.T) {
				name := "l-" + tr + "-" + listens
				l := startBin(t, b, bins[listens], "listen", "--json", "--interface", "eth0", "--name", name,
					"--key-file", key, "--transport", tr)
				ready := waitEvent(t, l, name+"'s ready event", isEvent("ready"))
				target := net.JoinHostPort(b.Addr().String(), strconv.Itoa(ready.Port))

				lines := []string{"from the " + dials + " build", "ünïcode ✓", "last"}
				c := startBin(t, a, bins[dials], "chat", "--json", "--name", "c-"+dials, "--key-file", key,
					"--transport", tr, "--to", target)
				send(t, c, lines...)
				if err := waitExit(t, c); err != nil {
					t.Fatalf("chat: %v; want exit 0", err)
				}
				waitMessages(t, l, "c-"+dials, lines)

				d := startBin(t, a, bins[dials], "chat", "--json", "--datagram", "--name", "d-"+dials, "--key-file", key,
					"--transport", tr, "--to", target)
				arrived := false
				for try := 0; try < 10 && !arrived; try++ {
					if err := d.WriteLine("datagram"); err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_, err := netns.WaitJSON(ctx, l, func(e event) bool {
						return e.Event == "datagram" && e.Name == "d-"+dials && e.Text == "datagram"
					})
					cancel()
					arrived = err == nil
				}
				if !arrived {
					t.Fatal("no datagram arrived")
				}
				d.CloseStdin()
				waitExit(t, d)

				src, dst := t.TempDir(), t.TempDir()
				sum := filetest.WriteRandom(t, filepath.Join(src, "f.bin"), 3<<20+5)
				r := startBin(t, b, bins[listens], "receive", "--json", "--interface", "eth0", "--name", "r-"+name,
					"--key-file", key, "--transport", tr, "--yes", "--dir", dst, "--count", "1")
				rr := waitEvent(t, r, "receive's ready event", isEvent("ready"))
				rtarget := net.JoinHostPort(b.Addr().String(), strconv.Itoa(rr.Port))
				s := startBin(t, a, bins[dials], "send", "--json", "--key-file", key, "--transport", tr,
					"--to", rtarget, filepath.Join(src, "f.bin"))
				if err := waitExit(t, s); err != nil {
					t.Fatalf("send: %v\n%s", err, s.Stderr())
				}
				if err := waitExit(t, r); err != nil {
					t.Fatalf("receive: %v", err)
				}
				checkReceived(t, r, dst, "f.bin", sum)
			})
		}
	}
}
