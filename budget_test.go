package nearnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/transport/mem"
	"github.com/nearnet/nearnet/security"
)

// The crowd of TestMemoryBudgetCrowd: crowdPeers authenticated peers, each
// sending crowdMessages messages of crowdSize bytes to an echo listener and
// reading nothing back.
const (
	crowdPeers    = 24
	crowdMessages = 4
	crowdSize     = 1 << 20
	crowdBudget   = 16 * crowdSize // the smallest budget allowed with 1 MiB messages

	// crowdDropTime outlasts the test: a stall longer than DropTime ends
	// the transports (TCP's user timeout aborts a connection whose peer
	// advertises a zero window that long), and a session whose log forgot
	// messages under the budget cannot resume (4008). That is the
	// documented limit; this test is about a stall that ends in time.
	crowdDropTime = 2 * time.Minute

	// crowdPerConn bounds the fixed cost of one connection on top of the
	// budget (PROTOCOL.md, "What a peer can make a node hold"): the
	// link's 64 KiB read buffer, TLS's buffers, the writer's spare buffer
	// (what its last write held, here up to about 1 MiB), goroutines;
	// over QUIC, the stream's receive window instead of TLS (512 KiB,
	// growing while the reader keeps up, as it does before the crowd
	// stalls it).
	crowdPerConnTCP  = 3 << 19
	crowdPerConnQUIC = 3 << 20
)

// TestMemoryBudgetCrowd: a crowd of authenticated peers that send large
// messages to an echo listener and never read the echoes pins no more than
// the node's MemoryBudget plus a fixed cost per connection (without the
// budget the live heap passed 150 MiB over TCP and 125 MiB over QUIC
// here); a peer that reads is still served meanwhile; and everything
// counted goes back when the node closes.
// The crowd runs in a child process (this test binary, as
// TestMemoryBudgetCrowdPeers), so the heap measured here is the listener's.
func TestMemoryBudgetCrowd(t *testing.T) {
	for _, tr := range []Transport{TransportTCP, TransportQUIC} {
		t.Run(tr.String(), func(t *testing.T) { testMemoryBudgetCrowd(t, tr) })
	}
}

func testMemoryBudgetCrowd(t *testing.T, tr Transport) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ln := newNode(t, Config{Transport: tr, MaxMessageSize: crowdSize, MemoryBudget: crowdBudget, DropTime: crowdDropTime})
	var echoes sync.WaitGroup
	defer echoes.Wait()
	go func() {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			echoes.Add(1)
			go func() {
				defer echoes.Done()
				for {
					m, err := c.ReceiveMessage(ctx)
					if err != nil {
						return
					}
					if c.SendMessage(ctx, m) != nil {
						return
					}
				}
			}()
		}
	}()
	base := liveHeap()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMemoryBudgetCrowdPeers$", "-test.v")
	cmd.Env = append(os.Environ(), "NEARNET_CROWD_ADDR="+ln.Addr().String(), "NEARNET_CROWD_KEY="+testKey.String(),
		"NEARNET_CROWD_TRANSPORT="+tr.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	var out []string
	expect := func(prefix string) string {
		t.Helper()
		for lines.Scan() {
			if s, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return s
			}
			out = append(out, lines.Text())
		}
		t.Fatalf("the crowd ended before %q: %v\n%s\n%s", prefix, lines.Err(), strings.Join(out, "\n"), stderr.String())
		return ""
	}
	expect("connected")
	start := time.Now()

	// Wait until the crowd has filled both halves of the budget (with
	// crowdPeers holders, the rule leaves about 1/(crowdPeers+1) free),
	// sampling the live heap meanwhile: it must stay bounded throughout.
	perConn := uint64(crowdPerConnTCP)
	if tr == TransportQUIC {
		perConn = crowdPerConnQUIC
	}
	bound := base + crowdBudget + crowdPeers*perConn
	var peak uint64
	full := false
	for range 100 {
		h := liveHeap()
		peak = max(peak, h)
		if h > bound {
			t.Fatalf("live heap %.1f MiB, over the bound %.1f MiB (%.1f before the crowd + the budget %d MiB + %d × %.1f MiB per connection)",
				mib(h), mib(bound), mib(base), crowdBudget>>20, crowdPeers, mib(perConn))
		}
		if ln.sessCfg.RxBudget.Used() > ln.sessCfg.RxBudget.Limit()/2 && ln.sessCfg.TxBudget.Used() > ln.sessCfg.TxBudget.Limit()/2 {
			full = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !full {
		t.Fatalf("the crowd did not fill the budget: received %d, sent %d of %d bytes each",
			ln.sessCfg.RxBudget.Used(), ln.sessCfg.TxBudget.Used(), ln.sessCfg.RxBudget.Limit())
	}
	for range 5 { // a few more samples, now that it is full
		h := liveHeap()
		peak = max(peak, h)
		if h > bound {
			t.Fatalf("live heap %.1f MiB with the budget full, over the bound %.1f MiB (rx %d tx %d)", mib(h), mib(bound), ln.sessCfg.RxBudget.Used(), ln.sessCfg.TxBudget.Used())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("live heap: %.1f MiB before the crowd, peak %.1f MiB with it (bound %.1f MiB), after %v", mib(base), mib(peak), mib(bound), time.Since(start))

	// A peer that reads is served: small messages and one of 64 KiB.
	other := newNode(t, Config{Transport: tr, MaxMessageSize: crowdSize})
	c, err := other.Connect(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		msg := make([]byte, 100)
		if i == 49 {
			msg = make([]byte, 64<<10)
		}
		binary.BigEndian.PutUint32(msg, uint32(i))
		if err := c.SendMessage(ctx, msg); err != nil {
			t.Fatalf("a reading peer's message %d: %v", i, err)
		}
		m, err := c.ReceiveMessage(ctx)
		if err != nil || len(m) != len(msg) || binary.BigEndian.Uint32(m) != uint32(i) {
			t.Fatalf("a reading peer's echo %d: %d bytes, %v", i, len(m), err)
		}
	}
	c.Close()

	// The crowd reads again: every echo session completes, each message
	// echoed exactly once and in order, though the listener's sessions
	// waited with both halves of the budget full. (Before the resume log
	// gave way to the budget, they waited for acks behind data they did
	// not read, and stayed blocked. Before a refused sender was woken
	// when bytes became yieldable, one refused while the others' buffers
	// were still being written waited for good once they had become
	// spare buffers, with nothing left to release them: over QUIC, whose
	// writes last until the peer reads, in about half the runs.)
	t.Logf("the crowd reads again after %v", time.Since(start))
	if _, err := io.WriteString(stdin, "read\n"); err != nil {
		t.Fatal(err)
	}
	if s := expect("read: "); s != "all echoes" {
		t.Fatalf("the crowd read again: %s", s)
	}
	t.Logf("every echo read after %v", time.Since(start))

	// Everything goes back to the budget when the node closes.
	stdin.Close()
	ln.Close()
	if rx, tx := ln.sessCfg.RxBudget.Used(), ln.sessCfg.TxBudget.Used(); rx != 0 || tx != 0 {
		t.Errorf("after Close the node still counts %d bytes received and %d sent", rx, tx)
	}
}

func liveHeap() uint64 {
	// Twice: what sync.Pools cache (the resume log's buffers) survives
	// one collection in their victim caches; nobody holds it.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// TestMemoryBudgetCrowdPeers is the crowd of TestMemoryBudgetCrowd, run
// in a child process until its stdin ends; it does nothing on its own.
func TestMemoryBudgetCrowdPeers(t *testing.T) {
	addr := os.Getenv("NEARNET_CROWD_ADDR")
	if addr == "" {
		t.Skip("the crowd of TestMemoryBudgetCrowd, run by it")
	}
	key, err := security.ParseKey(os.Getenv("NEARNET_CROWD_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	tr := TransportTCP
	if os.Getenv("NEARNET_CROWD_TRANSPORT") == TransportQUIC.String() {
		tr = TransportQUIC
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conns := make([]*Conn, crowdPeers)
	for i := range conns {
		n, err := NewNode(&Config{Key: &key, Transport: tr, MaxMessageSize: crowdSize, Hidden: true, DropTime: crowdDropTime})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if conns[i], err = n.Connect(ctx, addr); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("connected")
	var senders sync.WaitGroup
	for i, c := range conns {
		senders.Add(1)
		go func() {
			defer senders.Done()
			msg := make([]byte, crowdSize)
			for j := range crowdMessages {
				binary.BigEndian.PutUint64(msg, uint64(i)<<32|uint64(j))
				if c.SendMessage(ctx, msg) != nil {
					return // the listener's test is over
				}
			}
		}()
	}
	in := bufio.NewScanner(os.Stdin)
	if in.Scan() && in.Text() == "read" {
		fmt.Println("read: " + readEchoes(ctx, conns))
	}
	io.Copy(io.Discard, os.Stdin) // until the listener's test is done
	cancel()
	for _, c := range conns {
		c.Abort()
	}
	senders.Wait()
}

// readEchoes reads every crowd connection's echoes, then a last message
// sent after them, and says what was wrong, if anything.
func readEchoes(ctx context.Context, conns []*Conn) string {
	errs := make(chan error, len(conns))
	for i, c := range conns {
		go func() {
			errs <- func() error {
				for j := range crowdMessages + 1 {
					if j == crowdMessages {
						// Nothing follows the echoes (no duplicate): the
						// next message is the one sent now.
						if err := c.SendMessage(ctx, []byte("last")); err != nil {
							return fmt.Errorf("peer %d: the last message: %w", i, err)
						}
					}
					m, err := c.ReceiveMessage(ctx)
					switch {
					case err != nil:
						return fmt.Errorf("peer %d: echo %d: %w", i, j, err)
					case j == crowdMessages && string(m) != "last":
						return fmt.Errorf("peer %d: %d bytes after the echoes, want the last message", i, len(m))
					case j < crowdMessages && (len(m) != crowdSize || binary.BigEndian.Uint64(m) != uint64(i)<<32|uint64(j)):
						return fmt.Errorf("peer %d: echo %d is %d bytes numbered %x", i, j, len(m), m[:min(8, len(m))])
					}
				}
				return nil
			}()
		}()
	}
	var out []string
	for range conns {
		if err := <-errs; err != nil {
			out = append(out, err.Error())
		}
	}
	if len(out) > 0 {
		return strings.Join(out, "; ")
	}
	return "all echoes"
}

// TestMemoryBudgetResume: under a tight budget (16 × MaxMessageSize) both
// ways at once, with a cut and a resume in the middle (the log's resend
// is counted), every message arrives once and in order, and after Close
// the node counts nothing.
func TestMemoryBudgetResume(t *testing.T) {
	nw := mem.NewNetwork()
	cfg := Config{MaxMessageSize: 64 << 10, MemoryBudget: 16 * 64 << 10, SendBuffer: 64 << 10, ReceiveBuffer: 64 << 10}
	a := newMemNode(t, nw, cfg)
	b := newMemNode(t, nw, cfg)
	ca, cb := pair(t, a, b)
	cut := make(chan int, 1)
	exchange(t, ca, cb, 3000, func() { cut <- nw.Cut(b.Addr().String()) })
	if n := <-cut; n == 0 {
		t.Fatal("nothing was cut")
	}
	// Messages of every size up to the maximum, both ways at once.
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for _, p := range [][2]*Conn{{ca, cb}, {cb, ca}} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 200 {
				m := make([]byte, 8+(i*331)%(64<<10-8))
				binary.BigEndian.PutUint64(m, uint64(i))
				if err := p[0].SendMessage(ctx, m); err != nil {
					t.Errorf("send %d: %v", i, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 200 {
				m, err := p[1].ReceiveMessage(ctx)
				if err != nil || len(m) != 8+(i*331)%(64<<10-8) || binary.BigEndian.Uint64(m) != uint64(i) {
					t.Errorf("receive %d: %d bytes, %v", i, len(m), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, n := range []*Node{a, b} {
		if n.sessCfg.RxBudget.Used() > n.sessCfg.RxBudget.Limit() || n.sessCfg.TxBudget.Used() > n.sessCfg.TxBudget.Limit() {
			t.Errorf("over the budget: %d received, %d sent, of %d each", n.sessCfg.RxBudget.Used(), n.sessCfg.TxBudget.Used(), n.sessCfg.RxBudget.Limit())
		}
		n.Close()
		if rx, tx := n.sessCfg.RxBudget.Used(), n.sessCfg.TxBudget.Used(); rx != 0 || tx != 0 {
			t.Errorf("after Close the node still counts %d bytes received and %d sent", rx, tx)
		}
	}
}

// TestMemoryBudgetDefault: the budget is on unless turned off, at
// DefaultMemoryBudget or 16 × MaxMessageSize if that is more.
func TestMemoryBudgetDefault(t *testing.T) {
	nw := mem.NewNetwork()
	for _, c := range []struct {
		cfg  Config
		want int64
	}{
		{Config{}, DefaultMemoryBudget},
		{Config{MaxMessageSize: 64 << 20}, 16 * 64 << 20},
		{Config{MemoryBudget: 100 << 20}, 100 << 20},
		{Config{MemoryBudget: -1}, 0},
	} {
		n := newMemNode(t, nw, c.cfg)
		var got int64
		if rx, tx := n.sessCfg.RxBudget, n.sessCfg.TxBudget; rx != nil && tx != nil {
			got = rx.Limit() + tx.Limit()
		} else if rx != nil || tx != nil {
			t.Fatalf("%+v: one half of the budget only", c.cfg)
		}
		if got != c.want {
			t.Errorf("MemoryBudget %d, MaxMessageSize %d: a budget of %d, want %d", c.cfg.MemoryBudget, c.cfg.MaxMessageSize, got, c.want)
		}
		n.Close()
	}
}
