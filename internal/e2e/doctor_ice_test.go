//go:build linux

package e2e

import (
	"context"
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
	dir := t.TempDir()
	caFile := in.StartTURNTLS(t, user, pass).CAFile
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
	turnTLS := "turns:" + pub + ":5349"
	// SSL_CERT_FILE: the test's CA is this run's only root (Go reads it
	// for the system's roots, which TURN over TLS is verified against).
	goodOut, stderr, _ := runCLIEnv(t, in.C, []string{"SSL_CERT_FILE=" + caFile}, "doctor", "--json", "--interface", "lan", "--timeout", "1s",
		"--turn", stun, "--turn", turnUDP, "--turn", turnTCP, "--turn", turnTLS, "--turn-credentials", good)
	checks := iceChecks(t, goodOut)
	t.Logf("good:\n%s", goodOut)
	if c := checks["turn "+turnTLS]; !strings.Contains(c.Detail, "answered over tls") {
		t.Errorf("check %q: %+v; want it reached over TLS", "turn "+turnTLS, c)
	}
	for _, k := range []string{"stun " + stun, "turn " + turnUDP, "turn " + turnTCP, "turn " + turnTLS} {
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
		"--turn", turnUDP, "--turn", deadSTUN, "--turn", refusedTURN, "--turn", turnTLS, "--turn-credentials", bad)
	t.Logf("bad:\n%s", out)
	if err == nil {
		t.Errorf("doctor with failing servers exited 0")
	}
	checks = iceChecks(t, out)
	for _, w := range []struct{ key, detail, advice string }{
		{"turn " + turnUDP, "401 Unauthorized", "--turn-credentials"},
		{"stun " + deadSTUN, "no answer", "nothing answered within 1s"},
		{"turn " + refusedTURN, "connection refused", "nothing listens on that port"},
		// Without the test's CA among the roots.
		{"turn " + turnTLS, "TLS handshake", "does not verify against the system's roots"},
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

// runCLIEnv is runCLI with env added to the command's environment.
func runCLIEnv(t testing.TB, h *netns.Host, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := h.Command(ctx, cli(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("nearnet %s did not finish: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String(), err
}
