package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
)

// dropFamily makes host h drop, silently, every packet it sends of one
// address family (but multicast, so discovery still works): a filtered
// family, as a firewall or a broken route leaves it.
func dropFamily(t *testing.T, h *netns.Host, family string) {
	t.Helper()
	rule := "ip daddr != 224.0.0.0/4 drop"
	if family == "ipv6" {
		rule = "ip6 daddr != ff00::/8 drop"
	}
	cmd := h.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("table inet nnfilter {\n chain c_out {\n  type filter hook output priority 0; policy accept;\n  " + rule + "\n }\n}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", h.Name, err, out)
	}
}

// TestConnectPastAFilteredFamily: a dual-stack peer whose one family is
// filtered (packets dropped, no answer) is still reached at once over the
// other (Happy Eyeballs). --wait is half the handshake timeout: a dial that
// waited on the filtered address first would run out of it.
func TestConnectPastAFilteredFamily(t *testing.T) {
	t.Parallel()
	cli(t)
	netns.RequireCommands(t, "nft")
	for _, family := range []string{"ipv4", "ipv6"} {
		t.Run(family+" filtered", func(t *testing.T) {
			lab := netns.New(t, "a", "b")
			a, b := lab.Host("a"), lab.Host("b")
			key := keyFile(t, a)
			lb := listen(t, b, "b", "--key-file", key)
			// Both of b's addresses are known before the filter goes up.
			p := start(t, a, "browse", "--json", "--interface", "eth0", "--key-file", key)
			waitEvent(t, p, "b with both addresses", func(e event) bool {
				return (e.Event == "found" || e.Event == "updated") && e.Name == "b" && addrsHave(e.Addrs, b.Addr()) && addrsHave(e.Addrs, b.LinkLocal(t))
			})
			dropFamily(t, a, family)
			c := chat(t, a, "chat-a", "--key-file", key, "--to", "b", "--wait", "5s")
			send(t, c, "past the filter")
			if err := waitExit(t, c); err != nil {
				t.Fatalf("chat --to b with %s filtered: %v\n%s", family, err, c.Stderr())
			}
			waitMessages(t, lb.Proc, "chat-a", []string{"past the filter"})
		})
	}
}
