package stream

import (
	"sync"
	"time"
)

// Handles finds the connection an incoming stream names by its link's
// handle (E: the owner's entry for it). A dialer may open a stream as soon
// as it has the acceptor's hello, which goes out before the link joins its
// connection: so Find waits for a handle not known yet. Handles is safe
// for concurrent use.
type Handles[E any] struct {
	mu    sync.Mutex
	m     map[string]E
	added chan struct{} // closed when a handle is added; nil if nobody waits
}

// Add makes h name e.
func (hs *Handles[E]) Add(h string, e E) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.m == nil {
		hs.m = make(map[string]E)
	}
	hs.m[h] = e
	if hs.added != nil {
		close(hs.added)
		hs.added = nil
	}
}

// Drop forgets the handles of links that ended.
func (hs *Handles[E]) Drop(h []string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for _, h := range h {
		delete(hs.m, h)
	}
}

// Find returns what h names, waiting for it until deadline or done.
func (hs *Handles[E]) Find(h string, deadline time.Time, done <-chan struct{}) (E, bool) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		hs.mu.Lock()
		e, ok := hs.m[h]
		if ok {
			hs.mu.Unlock()
			return e, true
		}
		if hs.added == nil {
			hs.added = make(chan struct{})
		}
		ch := hs.added
		hs.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return e, false
		case <-done:
			return e, false
		}
	}
}
