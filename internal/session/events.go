package session

import "sync"

// Events runs the application's callbacks (state and viability changes)
// one at a time, in the order they were queued, on a goroutine that holds
// no lock of the library: a callback may call any method, Close included,
// without deadlocking. Queue may be called holding any lock; its own lock
// comes after every other. The zero value is ready.
type Events struct {
	mu      sync.Mutex
	q       []func()
	running bool
}

// Queue queues f; a goroutine runs the queue while it is not empty.
func (e *Events) Queue(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.q = append(e.q, f)
	if e.running {
		return
	}
	e.running = true
	go func() {
		for {
			e.mu.Lock()
			if len(e.q) == 0 {
				e.q, e.running = nil, false
				e.mu.Unlock()
				return
			}
			f := e.q[0]
			e.q[0] = nil
			e.q = e.q[1:]
			e.mu.Unlock()
			f()
		}
	}()
}
