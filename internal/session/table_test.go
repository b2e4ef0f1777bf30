package session

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

// A peer that closes its session and connects again at once: the new link
// can reach this node while the old link is still finishing its close
// handshake (the peer's close frame has arrived and been answered, but
// the link has not ended, so the session is not yet cancelled). The new
// link belongs to a new session: joining the old, closing one as a
// duplicate left the new Conn out of Accept and let it die with the old
// one. Here b's link is held in its close handshake deterministically: b's
// writer is blocked behind data a never reads, so b's echo, and the end of
// the link, wait until the test drops a's end.
func TestNewLinkAfterPeerCloseStartsNewSession(t *testing.T) {
	for _, via := range []string{"Attach", "Open"} {
		t.Run(via, func(t *testing.T) {
			w := newWorld(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, in, err := w.connect(ctx, w.a, w.b, false)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Drop()
			attach(t, w.b, in) // a's end is never started: a reads nothing
			// More than the pipe holds (no write-through here: the
			// writer writes, and blocks).
			big := bytes.Repeat([]byte{'x'}, 16<<10)
			for range 32 {
				if err := w.b.s.SendMessage(ctx, big); err != nil {
					t.Fatal(err)
				}
			}
			out.SendCloseNow(wire.CloseNormal, "") // a closed its session
			waitFor(t, "b to read a's close frame", func() bool {
				code, closed := in.PeerClose()
				return closed && code == wire.CloseNormal
			})
			if !w.b.s.PeerEnded() || w.b.s.Terminal() {
				t.Fatalf("b's session: PeerEnded %v, terminal %v; want a session the peer closed, still closing",
					w.b.s.PeerEnded(), w.b.s.Terminal())
			}

			var tab Table[*Session]
			tab.Init(func(s *Session) *Session { return s }, errTestClosed)
			if _, old, _ := tab.Open(w.a.id, func() *Session { return w.b.s }); old {
				t.Fatal("an empty table had a session")
			}
			var fresh []*Session
			mk := func(state Kind) *Session {
				s := New(w.b.cfg, &testOwner{}, Peer{ID: w.a.id}, state, true)
				fresh = append(fresh, s)
				return s
			}
			defer func() {
				for _, s := range fresh {
					s.Abort(errors.New("test over"))
					<-s.Done()
				}
			}()
			var got *Session
			if via == "Open" {
				// Connect by peer ID: a Conn the peer closed is not the
				// one to wait for.
				var old bool
				got, old, _ = tab.Open(w.a.id, func() *Session { return mk(Preparing) })
				if old {
					t.Fatal("Open returned the session the peer closed")
				}
			}
			out2, in2, err := w.connect(ctx, w.a, w.b, false)
			if err != nil {
				t.Fatal(err)
			}
			defer out2.Drop()
			c, becameReady, ok := tab.Attach(in2, w.b.boot, func(l *Path) *Session {
				s := mk(Ready)
				s.SetPeerBoot(l.PeerBoot)
				return s
			}, func(reason string) { t.Errorf("new link refused: %s", reason) })
			if !ok {
				t.Fatal("the new link did not attach")
			}
			if c == w.b.s {
				t.Fatal("the new link joined the session its peer had closed")
			}
			if via == "Open" && c != got {
				t.Fatal("the new link did not make the Conn Open made ready")
			}
			if !becameReady {
				t.Fatal("the new link's Conn is not reported new: Accept would never return it")
			}
			if st, _ := c.State(); st.Kind != Ready {
				t.Fatalf("new session is %v, want ready", st.Kind)
			}
			if cur, _ := tab.Get(w.a.id); cur != c {
				t.Fatal("the table does not hold the new session")
			}

			// a's end goes (with its data unread): b's old session
			// ends, and the new one is untouched.
			out.Drop()
			<-w.b.s.Ended()
			tab.Forget(w.a.id, w.b.s) // what the node does when it ends
			if cur, _ := tab.Get(w.a.id); cur != c {
				t.Fatal("forgetting the old session removed the new one")
			}
			if st, _ := c.State(); st.Kind != Ready {
				t.Fatalf("new session is %v after the old one ended, want ready", st.Kind)
			}
		})
	}
}
