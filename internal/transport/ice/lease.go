package ice

import (
	"net"
	"sync"
	"time"
)

// Lease returns the path as a net.PacketConn for one user at a time (one
// QUIC connection after another over the same path): closing the lease
// ends that user's reads without closing the path, and a later Lease
// takes the packets from then on. One reader goroutine serves the
// leases; a packet that finds no lease, or a full one, is dropped, as UDP
// drops it.
func (p *Path) Lease() net.PacketConn {
	l := &lease{p: p, in: make(chan []byte, 256), done: make(chan struct{}), wake: make(chan struct{})}
	p.mu.Lock()
	if p.cur != nil {
		p.cur.close()
	}
	p.cur = l
	if !p.reading {
		p.reading = true
		go p.readLoop()
	}
	p.mu.Unlock()
	return l
}

// readLoop hands packets to the current lease until the agent closes.
func (p *Path) readLoop() {
	for {
		b := make([]byte, 1500)
		n, err := p.c.Read(b)
		if err != nil {
			p.mu.Lock()
			p.readErr = err
			if p.cur != nil {
				p.cur.close()
			}
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		l := p.cur
		p.mu.Unlock()
		if l != nil {
			select {
			case l.in <- b[:n]:
			default:
			}
		}
	}
}

type lease struct {
	p        *Path
	in       chan []byte
	done     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed when the deadline changes
}

func (l *lease) close() { l.once.Do(func() { close(l.done) }) }

func (l *lease) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		l.mu.Lock()
		dl, wake := l.deadline, l.wake
		l.mu.Unlock()
		var timeout <-chan time.Time
		var t *time.Timer
		if !dl.IsZero() {
			t = time.NewTimer(time.Until(dl))
			timeout = t.C
		}
		select {
		case pkt := <-l.in:
			stopTimer(t)
			return copy(b, pkt), PeerAddr, nil
		case <-l.done:
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

func (l *lease) WriteTo(b []byte, a net.Addr) (int, error) {
	select {
	case <-l.done:
		return 0, net.ErrClosed
	default:
	}
	return l.p.WriteTo(b, a)
}

func (l *lease) Close() error {
	l.p.mu.Lock()
	if l.p.cur == l {
		l.p.cur = nil
	}
	l.p.mu.Unlock()
	l.close()
	return nil
}

func (l *lease) LocalAddr() net.Addr { return localAddr }

func (l *lease) SetDeadline(t time.Time) error { return l.SetReadDeadline(t) }

func (l *lease) SetReadDeadline(t time.Time) error {
	l.mu.Lock()
	l.deadline = t
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
	return nil
}

func (l *lease) SetWriteDeadline(time.Time) error { return nil }
func (l *lease) SetReadBuffer(int) error          { return nil }
func (l *lease) SetWriteBuffer(int) error         { return nil }

type timeoutError struct{}

func (timeoutError) Error() string   { return "ice: read deadline exceeded" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
