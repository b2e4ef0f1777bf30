package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A peer ends its session without this side learning it yet, and dials
// afresh: the new link must start a new session on both sides. This is
// what happens when a group member drops a neighbour with Conn.Abort (a
// reset, no close frame) and the two redial at once: the reset is still
// on its way, or was lost on a cut path, when the new link arrives.
//
// Here b's table forgets b's session (b ended it) before anything reaches
// a, and b dials a afresh. The reset of the old link follows the new
// link's handshake, as it may on the wire.
//
// BUG (PROTOCOL.md sections 8 and 11): b has no session, so the link makes
// a new one there (a new Conn from Connect, numbered from 0); a still has
// the old session, not suspended, with the peer's same boot, so
// Table.Attach/Session.Admit join the link to it as a duplicate (resume
// false, over false). The two ends then hold different sessions on one
// link ("different Conns"): b's messages 0.. are dropped at a as
// duplicates of the old session's, and a's first message on the link is a
// base carrying the old count, which b's new session, on its only link,
// fails after the handshake timeout ("base N skipped messages that no
// other link delivered"), or, if a's old link is the better one, a
// closes the fresh link with 4004 and b's new session waits for a
// successor that never comes (b's sends block; it fails after the
// handshake timeout). Resume has the same blind spot (not exercised
// here): Table.ResumeOffer and Session.Admit match a resume offer by the
// two runs' boots, not by session, so a resume dialed for an old session
// is offered and taken by a newer session with the same peer run (as one
// that section 11 step 5 made from an earlier resume link).
//
// The root cause is on the wire: a hello names the peer's run (boot) but
// not the session, so whether a link joins (section 8) or resumes
// (section 11) a session is decided by each side from its own view, and
// the views differ while the peer's end of the session (a reset, or a
// close frame) has not arrived. Section 8's rule "a link is a duplicate
// only of a connection its peer still has" is implemented only as "whose
// close frame has not arrived" (Session.PeerEnded). A fix needs the
// hellos to say which session a link is for (a session ID per
// connection, or the sender's count of messages sent and received so
// far, checked on join): a wire change.
func TestFreshLinkAfterPeerEndedUnseen(t *testing.T) {
	t.Skip("known bug: a fresh link joins a session the peer already ended (see the comment); needs a wire change")
	w := newWorld(t)
	tables := map[*side]*Table[*Session]{}
	var made []*Session
	for _, x := range []*side{w.a, w.b} {
		tab := &Table[*Session]{}
		tab.Init(func(s *Session) *Session { return s }, errTestClosed)
		tab.m[x.s.Peer().ID] = x.s
		tables[x] = tab
	}
	t.Cleanup(func() {
		for _, s := range made {
			s.Abort(errors.New("test over"))
			<-s.Done()
		}
	})
	mk := func(x *side) func(*Path) *Session {
		return func(l *Path) *Session {
			s := New(x.cfg, x.owner, l.Peer, Ready, x == w.b)
			s.SetPeerBoot(l.PeerBoot)
			made = append(made, s)
			return s
		}
	}
	attachVia := func(x *side, l *Path) *Session {
		t.Helper()
		s, _, ok := tables[x].Attach(l, x.boot, mk(x), func(string) { l.Fail(errTestClosed) })
		if !ok {
			t.Fatalf("%s: the link did not join", x.boot)
		}
		return s
	}

	w.link(w.a, w.b)
	send(t, w.a.s, 0, 4)
	receiveAll(t, w.b.s, 0, 4)
	send(t, w.b.s, 0, 4)
	receiveAll(t, w.a.s, 0, 4)

	old := w.b.s
	tables[w.b].Forget(w.a.id, old) // b dropped a

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, in, err := w.connect(ctx, w.b, w.a, false)
	if err != nil {
		t.Fatal(err)
	}
	sb := attachVia(w.b, out)
	sa := attachVia(w.a, in)
	old.Abort(errors.New("dropped")) // the old link's end reaches a now
	if sb == old {
		t.Fatal("b's fresh link joined the session b had dropped")
	}
	if sa == w.a.s {
		t.Fatal("a joined b's fresh link to the session b had ended: the two ends hold different sessions")
	}
	send(t, sb, 0, 3)
	receiveAll(t, sa, 0, 3)
	send(t, sa, 0, 3)
	receiveAll(t, sb, 0, 3)
}
