//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
)

// iceCheck is one line of `nearnet doctor --json` about an ICE server.
type iceCheck struct {
	Event, Interface, Check, Server, Detail, Advice string
	OK                                              bool
}

func iceChecks(t *testing.T, out string) map[string]iceCheck {
	t.Helper()
	checks := map[string]iceCheck{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c iceCheck
		if err := json.Unmarshal([]byte(line), &c); err != nil || c.Event != "check" || c.Interface != "ice" {
			continue
		}
		checks[c.Check+" "+c.Server] = c
	}
	return checks
}

// TestDoctorICE: doctor --turn on carol's host (behind home B's NAT)
// checks the real coturn of the small internet: with good credentials
// STUN answers with rb's public address and TURN allocates over UDP and
// TCP, and the candidates include server-reflexive and relayed ones; with
// wrong credentials TURN is a 401 (and no relayed candidate), a STUN
// server where nothing listens a timeout, a TURN port that refuses a
// refusal, each with its advice, and the password appears nowhere.
func TestDoctorICE(t *testing.T) {
	t.Parallel()
	cli(t)
	in := netns.NewInternet(t)
	const user, pass, wrong = "nearnet", "c0ffee-7a1b2c", "wrong-4d5e6f"
	in.StartTURN(t, user, pass)
	dir := t.TempDir()
	creds := func(name, pw string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(user+":"+pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, bad := creds("good", pass), creds("bad", wrong)
	pub := netns.PublicAddr.String()

	stun, turnUDP, turnTCP := "stun:"+pub+":3478", "turn:"+pub+":3478?transport=udp", "turn:"+pub+":3478?transport=tcp"
	goodOut, stderr, _ := runCLI(t, in.C, "doctor", "--json", "--interface", "lan", "--timeout", "1s",
		"--turn", stun, "--turn", turnUDP, "--turn", turnTCP, "--turn-credentials", good)
	checks := iceChecks(t, goodOut)
	t.Logf("good:\n%s", goodOut)
	for _, k := range []string{"stun " + stun, "turn " + turnUDP, "turn " + turnTCP} {
		c, ok := checks[k]
		if !ok || !c.OK || !strings.Contains(c.Detail, "10.200.2.2:") {
			t.Errorf("check %q: %+v; want it passed, with carol's mapped address on rb", k, c)
		}
		if strings.HasPrefix(k, "turn") && !strings.Contains(c.Detail, "allocated relayed address "+pub+":") {
			t.Errorf("check %q: %+v; want the relayed address on coturn", k, c)
		}
	}
	if c := checks["candidates "]; !c.OK || !strings.Contains(c.Detail, "host [") || !strings.Contains(c.Detail, "srflx [udp 10.200.2.2:") ||
		!strings.Contains(c.Detail, "relay [udp "+pub+":") {
		t.Errorf("candidates: %+v; want host, server-reflexive and relayed ones", c)
	}

	deadSTUN, refusedTURN := "stun:"+pub+":3479", "turn:"+pub+":3479?transport=tcp"
	out, stderr2, err := runCLI(t, in.C, "doctor", "--json", "--interface", "lan", "--timeout", "1s",
		"--turn", turnUDP, "--turn", deadSTUN, "--turn", refusedTURN, "--turn-credentials", bad)
	t.Logf("bad:\n%s", out)
	if err == nil {
		t.Errorf("doctor with failing servers exited 0")
	}
	checks = iceChecks(t, out)
	for _, w := range []struct{ key, detail, advice string }{
		{"turn " + turnUDP, "401 Unauthorized", "--turn-credentials"},
		{"stun " + deadSTUN, "no answer", "nothing answered within 1s"},
		{"turn " + refusedTURN, "connection refused", "nothing listens on that port"},
	} {
		c, ok := checks[w.key]
		if !ok || c.OK || !strings.Contains(c.Detail, w.detail) || !strings.Contains(c.Advice, w.advice) {
			t.Errorf("check %q: %+v; want it failed with %q, advising %q", w.key, c, w.detail, w.advice)
		}
	}
	// The TURN server that refuses the credentials still answers STUN:
	// a server-reflexive candidate, but nothing relayed.
	if c := checks["candidates "]; strings.Contains(c.Detail, "relay [") || !strings.Contains(c.Detail, "srflx [") {
		t.Errorf("candidates with the TURN credentials refused: %+v; want server-reflexive, nothing relayed", c)
	}
	for _, s := range []string{goodOut, out, stderr, stderr2} {
		if strings.Contains(s, pass) || strings.Contains(s, wrong) {
			t.Errorf("doctor printed a password:\n%s", s)
		}
	}
}
