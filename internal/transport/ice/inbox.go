package ice

import (
	"net"
	"sync"
	"time"
)

// inbox is the receiving half of a packet path that another goroutine
// feeds (a lease of a Path, a mailbox path): the packets, the close, and
// the read deadline of a net.PacketConn.
type inbox struct {
	in       chan []byte
	done     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed when the deadline changes
}

func newInbox() inbox {
	return inbox{in: make(chan []byte, 256), done: make(chan struct{}), wake: make(chan struct{})}
}

func (q *inbox) close() { q.once.Do(func() { close(q.done) }) }

// read waits for a packet until the read deadline, q's close or gone
// (nil: never).
func (q *inbox) read(b []byte, gone <-chan struct{}) (int, net.Addr, error) {
	for {
		q.mu.Lock()
		dl, wake := q.deadline, q.wake
		q.mu.Unlock()
		var timeout <-chan time.Time
		var t *time.Timer
		if !dl.IsZero() {
			t = time.NewTimer(time.Until(dl))
			timeout = t.C
		}
		select {
		case pkt := <-q.in:
			stopTimer(t)
			return copy(b, pkt), PeerAddr, nil
		case <-q.done:
			stopTimer(t)
			return 0, nil, net.ErrClosed
		case <-gone:
			stopTimer(t)
			return 0, nil, net.ErrClosed
		case <-timeout:
			return 0, nil, &timeoutError{}
		case <-wake: // a new deadline: wait for that one
			stopTimer(t)
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (q *inbox) LocalAddr() net.Addr { return localAddr }

func (q *inbox) SetDeadline(t time.Time) error { return q.SetReadDeadline(t) }

func (q *inbox) SetReadDeadline(t time.Time) error {
	q.mu.Lock()
	q.deadline = t
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
	return nil
}

func (q *inbox) SetWriteDeadline(time.Time) error { return nil }
func (q *inbox) SetReadBuffer(int) error          { return nil }
func (q *inbox) SetWriteBuffer(int) error         { return nil }
