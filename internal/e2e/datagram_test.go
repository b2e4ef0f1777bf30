package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
)

// TestDatagramChat: `chat --datagram --to a` on b sends each stdin line as
// a datagram over the LAN; `listen` on a prints them as datagram events
// with b's name and peer ID, and chat exits 0 when stdin ends.
//
// Datagrams are best effort: each line is written again (a bounded number
// of times) until a has printed it. Across one bridge the first one
// arrives.
func TestDatagramChat(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	key := keyFile(t, a)
	la := listen(t, a, "a", "--key-file", key)

	p := chat(t, b, "chat-b", "--datagram", "--key-file", key, "--to", "a")
	waitEvent(t, p, "chat-b connected to a", func(e event) bool {
		return e.Event == "connected" && e.Peer == la.ready.Peer
	})
	conn := waitEvent(t, la.Proc, "a's connected event for chat-b", func(e event) bool {
		return e.Event == "connected" && e.Name == "chat-b"
	})

	lines := []string{"first datagram", "second: ünïcode ✓", "third  with  spaces", "4"}
	for _, line := range lines {
		arrived := false
		for try := 0; try < 10 && !arrived; try++ {
			if try > 0 {
				t.Logf("datagram %q not seen on a within 2s: sending it again", line)
			}
			if err := p.WriteLine(line); err != nil {
				t.Fatalf("write to %s: %v", p, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := netns.WaitJSON(ctx, la.Proc, func(e event) bool {
				return e.Event == "datagram" && e.Name == "chat-b" && e.Text == line
			})
			cancel()
			arrived = err == nil
		}
		if !arrived {
			t.Fatalf("datagram %q from b never reached a", line)
		}
	}
	if err := p.CloseStdin(); err != nil {
		t.Fatalf("close stdin of %s: %v", p, err)
	}
	if err := waitExit(t, p); err != nil {
		t.Fatalf("chat --datagram from b: %v; want exit 0 after stdin ends", err)
	}

	for _, e := range events(la.Proc, isEvent("datagram")) {
		if e.Name != "chat-b" || e.Peer != conn.Peer || !slices.Contains(lines, e.Text) {
			t.Errorf("a: datagram event %s; want one of b's lines, name chat-b, peer %s", e, conn.Peer)
		}
	}
	if got := messages(la.Proc, "chat-b"); len(got) > 0 {
		t.Errorf("a: messages %q from chat --datagram; want datagrams only", got)
	}
}
