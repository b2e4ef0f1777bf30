package e2e

import (
	"syscall"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
)

// TestThreeHostsBrowseAndChat runs a listener on each of three hosts with
// one pre-shared key, browses from a, chats from a to b by name, and from c
// to every peer found.
func TestThreeHostsBrowseAndChat(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b", "c")
	a, b, c := lab.Host("a"), lab.Host("b"), lab.Host("c")
	key := keyFile(t, a)
	la := listen(t, a, "a", "--key-file", key)
	lb := listen(t, b, "b", "--key-file", key)
	lc := listen(t, c, "c", "--key-file", key)

	browse := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key)

	t.Run("browse finds b and c", func(t *testing.T) {
		for _, l := range []*listener{lb, lc} {
			found := waitEvent(t, browse, "found "+l.ready.Name, func(e event) bool {
				return e.Event == "found" && e.Name == l.ready.Name
			})
			if found.Peer != l.ready.Peer || found.Port != l.ready.Port {
				t.Errorf("found %s; want peer %s port %d", found, l.ready.Peer, l.ready.Port)
			}
			if !addrsHave(found.Addrs, l.host.Addr()) {
				t.Errorf("found %s; want %s among the addresses", found, l.host.Addr())
			}
			if txt := txtMap(t, found.TXT); txt["id"] != l.ready.Peer {
				t.Errorf("found %s; want TXT id=%s", found, l.ready.Peer)
			}
		}
	})

	t.Run("chat to b by name", func(t *testing.T) {
		lines := []string{"first line", "second: ünïcode ✓", "third  with  spaces", "4"}
		p := chat(t, a, "chat-a", "--key-file", key, "--to", "b")
		send(t, p, lines...)
		if err := waitExit(t, p); err != nil {
			t.Fatalf("chat from a to b: %v; want exit 0", err)
		}
		waitMessages(t, lb.Proc, "chat-a", lines)
	})

	t.Run("chat from c to every peer", func(t *testing.T) {
		p := chat(t, c, "chat-c", "--key-file", key)
		// Without --to the chat connects to peers as it finds them: send
		// once it is connected to a and b, so the line must reach both.
		for _, l := range []*listener{la, lb} {
			waitEvent(t, p, "connected to "+l.ready.Name, func(e event) bool {
				return e.Event == "connected" && e.Peer == l.ready.Peer
			})
		}
		send(t, p, "hello everyone from c")
		if err := waitExit(t, p); err != nil {
			t.Fatalf("chat from c: %v; want exit 0", err)
		}
		for _, l := range []*listener{la, lb} {
			waitMessages(t, l.Proc, "chat-c", []string{"hello everyone from c"})
		}
	})

	t.Run("browse sees c leave", func(t *testing.T) {
		if err := lc.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, browse, "lost c", func(e event) bool {
			return e.Event == "lost" && e.Name == "c"
		})
	})

	t.Run("browse --timeout ends by itself", func(t *testing.T) {
		p := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key, "--timeout", "3s")
		waitEvent(t, p, "found b", func(e event) bool { return e.Event == "found" && e.Peer == lb.ready.Peer })
		if err := waitExit(t, p); err != nil {
			t.Fatalf("browse --timeout 3s: %v; want exit 0", err)
		}
	})
}
