package ice

import (
	"net"
)

// Lease returns the path as a net.PacketConn for one user at a time (one
// QUIC connection after another over the same path): closing the lease
// ends that user's reads without closing the path, and a later Lease
// takes the packets from then on. One reader goroutine serves the
// leases; a packet that finds no lease, or a full one, is dropped, as UDP
// drops it.
func (p *Path) Lease() net.PacketConn {
	l := &lease{inbox: newInbox(), p: p}
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
	inbox
	p *Path
}

func (l *lease) ReadFrom(b []byte) (int, net.Addr, error) { return l.read(b, nil) }

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

type timeoutError struct{}

func (timeoutError) Error() string   { return "ice: read deadline exceeded" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
