package session

import "sync/atomic"

// Link is what the session needs of a link: duplicate resolution's view of
// it (Dup), how many data messages it carried, and a base message to
// continue the numbering on it. Path implements it.
type Link interface {
	Dup
	Sent() uint64      // data messages queued on it so far
	SendBase(n uint64) // queue a base message numbering what follows from n
}

// Links is a session's set of attached links and the one it sends on. Data
// messages are numbered across links: a link that takes over sending
// starts with a base message carrying the count its predecessors carried
// (sentBase). T is the link type and P its pointer, which implements Link.
//
// Links is guarded by its owner's lock, except Send, which SendMessage
// calls without it. Init it before use.
type Links[T any, P interface {
	*T
	Link
}] struct {
	all      []P
	send     atomic.Pointer[T] // where messages are queued; nil between links
	sentBase uint64            // data messages carried by retired send links
	changed  chan struct{}     // closed when send changes or Wake is called
}

// Init prepares an empty set.
func (s *Links[T, P]) Init() { s.changed = make(chan struct{}) }

// Send returns the send link, nil between links. It takes no lock.
func (s *Links[T, P]) Send() *T { return s.send.Load() }

// All returns the attached links; the owner may not keep the slice past
// its lock.
func (s *Links[T, P]) All() []P { return s.all }

// Len is the number of attached links.
func (s *Links[T, P]) Len() int { return len(s.all) }

// Only returns the attached link if there is exactly one.
func (s *Links[T, P]) Only() (P, bool) {
	if len(s.all) != 1 {
		return nil, false
	}
	return s.all[0], true
}

// Add attaches l.
func (s *Links[T, P]) Add(l P) { s.all = append(s.all, l) }

// Changed returns the channel closed when the send link changes or Wake is
// called.
func (s *Links[T, P]) Changed() <-chan struct{} { return s.changed }

// Wake closes Changed's channel: a sender waiting for a link should look
// again.
func (s *Links[T, P]) Wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Promote makes l the send link, after a base message if links before it
// carried messages.
func (s *Links[T, P]) Promote(l P) {
	if s.sentBase > 0 {
		l.SendBase(s.sentBase)
	}
	s.send.Store((*T)(l))
	s.Wake()
}

// Retired counts n messages that a retired send link carried (its close
// flushed them).
func (s *Links[T, P]) Retired(n uint64) { s.sentBase += n }

// Remove detaches l. It reports whether l was attached and whether it was
// the send link; then what it carried is counted and no link sends.
func (s *Links[T, P]) Remove(l P) (found, wasSend bool) {
	for i, x := range s.all {
		if x == l {
			s.all = append(s.all[:i], s.all[i+1:]...)
			found = true
			break
		}
	}
	if s.send.Load() == (*T)(l) {
		s.sentBase += l.Sent()
		s.send.Store(nil)
		wasSend = true
	}
	return found, wasSend
}

// Best returns the attached link that survives a duplicate resolution
// (Better). There must be one.
func (s *Links[T, P]) Best(localGreater bool) P {
	best := s.all[0]
	for _, l := range s.all[1:] {
		if Better(localGreater, l, best) {
			best = l
		}
	}
	return best
}

// Clear detaches every link and returns them: a resumed link replaces
// them (then Resume, Add and Promote it).
func (s *Links[T, P]) Clear() (old []P) {
	old = append(old, s.all...)
	clear(s.all)
	s.all = s.all[:0]
	s.send.Store(nil)
	return old
}

// Resume says that the peer holds n of our messages: the next link
// promoted continues the numbering from n.
func (s *Links[T, P]) Resume(n uint64) { s.sentBase = n }

// End stops sending for good: the session ended.
func (s *Links[T, P]) End() {
	s.send.Store(nil)
	s.Wake()
}
