package e2e

import (
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/nearnet/nearnet/internal/netns"
)

var (
	keyMismatchRE = regexp.MustCompile(`(?i)key`)
	untrustedRE   = regexp.MustCompile(`(?i)(trust|fingerprint|identity|sha256:)`)
)

// TestWrongKeyRejected: x holds another pre-shared key than a and b. Its
// chat to b and a's chat to x's listener are rejected, with a clear error on
// both sides, and a and b still talk.
func TestWrongKeyRejected(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b", "x")
	a, b, x := lab.Host("a"), lab.Host("b"), lab.Host("x")
	key, wrong := keyFile(t, a), keyFile(t, x)
	lb := listen(t, b, "b", "--key-file", key)
	lx := listen(t, x, "x", "--key-file", wrong)

	t.Run("x to b", func(t *testing.T) {
		p := chat(t, x, "chat-x", "--key-file", wrong, "--to", "b")
		send(t, p, "from the wrong key")
		expectRejected(t, p, keyMismatchRE)
		rej := waitEvent(t, lb.Proc, "b's rejected event", isEvent("rejected"))
		if !keyMismatchRE.MatchString(rej.Reason) {
			t.Errorf("b: rejected %s; want the reason to mention the key", rej)
		}
	})

	t.Run("a to x", func(t *testing.T) {
		p := chat(t, a, "chat-a", "--key-file", key, "--to", "x")
		send(t, p, "to the wrong key")
		expectRejected(t, p, keyMismatchRE)
		rej := waitEvent(t, lx.Proc, "x's rejected event", isEvent("rejected"))
		if !keyMismatchRE.MatchString(rej.Reason) {
			t.Errorf("x: rejected %s; want the reason to mention the key", rej)
		}
	})

	t.Run("a to b still works", func(t *testing.T) {
		p := chat(t, a, "chat-a2", "--key-file", key, "--to", "b")
		send(t, p, "right key")
		if err := waitExit(t, p); err != nil {
			t.Fatalf("chat from a to b: %v; want exit 0", err)
		}
		waitMessages(t, lb.Proc, "chat-a2", []string{"right key"})
		// Delivered in order after x's attempt: had x's line got through,
		// it would be here by now.
		for _, e := range events(lb.Proc, isEvent("message")) {
			if e.Text == "from the wrong key" {
				t.Fatalf("b accepted a message from the wrong key: %s", e)
			}
		}
		if slices.ContainsFunc(events(lx.Proc, isEvent("message")), func(e event) bool { return e.Text == "to the wrong key" }) {
			t.Fatal("x accepted a message from a peer with another key")
		}
	})
}

// TestPinnedIdentities: b listens with identity P and trusts only a's
// identity Q; a trusts P. Pins that match connect; a pin of another
// identity, on either side, is rejected clearly.
func TestPinnedIdentities(t *testing.T) {
	t.Parallel()
	cli(t)
	lab := netns.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	dir := t.TempDir()
	p, q, r := filepath.Join(dir, "p.pem"), filepath.Join(dir, "q.pem"), filepath.Join(dir, "r.pem")
	fpP, fpQ, fpR := identity(t, b, p), identity(t, a, q), identity(t, a, r)
	if again := identity(t, b, p); again != fpP {
		t.Fatalf("nearnet id --identity %s printed %s, then %s: the identity did not persist", p, fpP, again)
	}
	if fpP == fpQ || fpQ == fpR || fpP == fpR {
		t.Fatalf("three new identities share a fingerprint: %s %s %s", fpP, fpQ, fpR)
	}
	lb := listen(t, b, "b", "--identity", p, "--trust", fpQ)

	t.Run("matching pins", func(t *testing.T) {
		c := chat(t, a, "chat-q", "--identity", q, "--trust", fpP, "--to", "b")
		lines := []string{"pinned one", "pinned two"}
		send(t, c, lines...)
		if err := waitExit(t, c); err != nil {
			t.Fatalf("chat with matching pins: %v; want exit 0", err)
		}
		waitMessages(t, lb.Proc, "chat-q", lines)
	})

	t.Run("dialer pins another identity", func(t *testing.T) {
		c := chat(t, a, "chat-wrong-pin", "--identity", q, "--trust", fpR, "--to", "b")
		send(t, c, "must not arrive")
		expectRejected(t, c, untrustedRE)
	})

	t.Run("listener does not trust the dialer", func(t *testing.T) {
		c := chat(t, a, "chat-r", "--identity", r, "--trust", fpP, "--to", "b")
		before := len(events(lb.Proc, isEvent("rejected")))
		send(t, c, "must not arrive either")
		expectRejected(t, c, regexp.MustCompile(`.`))
		n := 0
		waitEvent(t, lb.Proc, "b's rejected event", func(e event) bool {
			if e.Event == "rejected" {
				n++
			}
			return n > before && e.Event == "rejected" && e.Reason != ""
		})
	})

	for _, e := range events(lb.Proc, isEvent("message")) {
		if e.Name != "chat-q" {
			t.Errorf("b accepted a message past a failed pin: %s", e)
		}
	}
}
