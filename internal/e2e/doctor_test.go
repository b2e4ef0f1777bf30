package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
)

// checkLine is one line of `nearnet doctor --json`.
type checkLine struct {
	Event, Interface, Check, Peer, Detail, Advice string
	OK                                            bool
}

func doctorChecks(t *testing.T, out string) map[string]checkLine {
	t.Helper()
	checks := map[string]checkLine{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c checkLine
		if err := json.Unmarshal([]byte(line), &c); err != nil || c.Event != "check" {
			continue
		}
		checks[c.Check+" "+c.Peer] = c
	}
	return checks
}

// TestDoctor: on a healthy link doctor passes every check and reaches the
// peer over TCP and QUIC; where multicast is dropped (nftables), the mDNS
// check fails and says to connect with --to host:port.
func TestDoctor(t *testing.T) {
	t.Parallel()
	cli(t)
	netns.RequireCommands(t, "nft")
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	key := keyFile(t, a)
	listen(t, b, "b", "--key-file", key)

	out, stderr, err := runCLI(t, a, "doctor", "--json", "--interface", "eth0", "--key-file", key)
	checks := doctorChecks(t, out)
	if err != nil {
		t.Fatalf("doctor on a healthy link: %v\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{"interface ", "mdns ", "responders ", "peers ", "tcp b", "quic b", "datagrams b"} {
		if c, ok := checks[want]; !ok || !c.OK {
			t.Errorf("check %q: %+v; want it passed", want, c)
		}
	}

	cmd := a.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("table inet nnmc {\n chain c_out {\n  type filter hook output priority 0; policy accept;\n" +
		"  ip daddr 224.0.0.0/4 drop\n  ip6 daddr ff00::/8 drop\n }\n}\n")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, o)
	}
	out, _, err = runCLI(t, a, "doctor", "--json", "--interface", "eth0", "--key-file", key, "--timeout", "1s")
	checks = doctorChecks(t, out)
	c := checks["mdns "]
	if err == nil || c.OK || !strings.Contains(c.Advice, "--to host:port") {
		t.Fatalf("doctor with multicast dropped: err %v, mdns check %+v; want it failed, advising --to host:port\n%s", err, c, out)
	}
}
