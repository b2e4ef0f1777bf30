package session

import (
	"sync"

	"github.com/nearnet/nearnet/internal/wire"
)

// Table is a node's sessions by peer, at most one per peer: a second link
// to a peer joins the peer's session (PROTOCOL.md, "Duplicate
// connections"). C is the owner's connection type, which has a Session.
// A Table is safe for concurrent use; its lock comes after every
// Session's, and it calls no Session while holding it.
type Table[C comparable] struct {
	sess      func(C) *Session // the session of a C
	errClosed error            // what a link that comes after Close fails with

	mu     sync.Mutex
	closed bool
	m      map[[16]byte]C
}

// Init sets how to find the session of a C, and the error a link that
// comes after Close fails with.
func (t *Table[C]) Init(sess func(C) *Session, errClosed error) {
	t.sess, t.errClosed, t.m = sess, errClosed, make(map[[16]byte]C)
}

// Get returns the session of peer id, if any.
func (t *Table[C]) Get(id [16]byte) (C, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.m[id]
	return c, ok
}

// All returns every connection.
func (t *Table[C]) All() []C {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allLocked()
}

// Sessions returns the sessions of every C.
func (t *Table[C]) Sessions() []*Session {
	cs := t.All()
	out := make([]*Session, len(cs))
	for i, c := range cs {
		out[i] = t.sess(c)
	}
	return out
}

func (t *Table[C]) allLocked() []C {
	cs := make([]C, 0, len(t.m))
	for _, c := range t.m {
		cs = append(cs, c)
	}
	return cs
}

// Close refuses new connections from now on and returns every one.
func (t *Table[C]) Close() []C {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return t.allLocked()
}

// Forget removes c, which ended, unless another connection replaced it.
func (t *Table[C]) Forget(id [16]byte, c C) {
	t.mu.Lock()
	if t.m[id] == c {
		delete(t.m, id)
	}
	t.mu.Unlock()
}

// Open returns the connection to peer id, old, if there is one, or puts
// the one mk makes; closed reports that the node has closed. A connection
// that has ended, or that the peer has closed (Session.PeerEnded) and that
// is still finishing its close handshake, is forgotten and not returned.
func (t *Table[C]) Open(id [16]byte, mk func() C) (c C, old, closed bool) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return c, false, true
		}
		c, ok := t.m[id]
		if !ok {
			c = mk()
			t.m[id] = c
		}
		t.mu.Unlock()
		if !ok {
			return c, false, false
		}
		if s := t.sess(c); !s.Terminal() && !s.PeerEnded() {
			return c, true, false
		}
		t.Forget(id, c) // ended since the lookup, or about to: the node forgets it
	}
}

// Attach gives l, a handshaken link, to its peer's session, making the
// connection with mk if l is the first link to that peer: it joins as a
// duplicate or resumes (Admit; boot is this node's run), or starts a new
// session if the peer no longer has the old one. end refuses l with a
// reason when what it was dialed to resume is gone. isNew reports whether
// l made the connection ready (it was made here, or was preparing); ok is
// false if l did not join.
func (t *Table[C]) Attach(l *Path, boot string, mk func(*Path) C, end func(reason string)) (c C, isNew, ok bool) {
	var zero C
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			l.Fail(t.errClosed)
			return zero, false, false
		}
		c, found := t.m[l.Peer.ID]
		if l.ResumeFor != nil && (!found || t.sess(c) != l.ResumeFor) {
			t.mu.Unlock()
			end("session ended") // what this link was dialed to resume is gone
			return zero, false, false
		}
		if !found {
			c = mk(l)
			t.m[l.Peer.ID] = c
		}
		t.mu.Unlock()
		s, resume := t.sess(c), false
		if found {
			var over bool
			resume, over = s.Admit(l, boot)
			if over {
				t.Forget(l.Peer.ID, c)
				if l.ResumeFor != nil {
					end("session lost")
					return zero, false, false
				}
				continue // a new session with this link
			}
		}
		if joined, becameReady := s.Attach(l, resume); joined {
			return c, !found || becameReady, true
		}
		// c ended between the lookup and Attach, or its peer closed it
		// (Session.PeerEnded); forget it and retry.
		t.Forget(l.Peer.ID, c)
		if l.ResumeFor != nil {
			end("session ended")
			return zero, false, false
		}
	}
}

// Parallel runs f on every element of xs at once and waits for all (a
// node closing its sessions).
func Parallel[T any](xs []T, f func(T)) {
	var wg sync.WaitGroup
	for _, x := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(x)
		}()
	}
	wg.Wait()
}

// ResumeOffer returns the resume offer for the hello of l, or nil: the
// session l was dialed to resume, or, for an incoming link whose dialer
// offers to resume a session with this run of the node (boot), the
// session with its peer.
func (t *Table[C]) ResumeOffer(l *Path, boot string) *wire.Resume {
	s := l.ResumeFor
	if !l.Outgoing() && l.PeerResume != nil && l.PeerResume.PeerBoot == boot {
		if c, ok := t.Get(l.Peer.ID); ok {
			s = t.sess(c)
		}
	}
	if s == nil {
		return nil
	}
	return s.ResumeOffer(l)
}

// Drain calls f with every value waiting in ch, without blocking.
func Drain[T any](ch <-chan T, f func(T)) {
	for {
		select {
		case x := <-ch:
			f(x)
		default:
			return
		}
	}
}
