// Package relaytest is a TCP relay for tests of broken paths: it forwards
// connections to a target and can go silent (Pause), reset everything
// (Cut), close everything gracefully (Fin) and come back (Heal, Resume);
// and a UDP one ([NewUDP]) that can go silent (Cut) and come back (Heal).
// It runs on loopback only.
package relaytest

import (
	"net"
	"sync"
	"testing"
)

// Relay forwards TCP connections to a target until Cut; after that it
// resets the ones it has and every new one (accepts, then resets: never a
// refusal), until Heal.
type Relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
	paused chan struct{} // non-nil while paused: closed to resume
	wg     sync.WaitGroup
}

// Pause stops forwarding without closing anything: a silent path.
func (r *Relay) Pause() {
	r.mu.Lock()
	if r.paused == nil {
		r.paused = make(chan struct{})
	}
	r.mu.Unlock()
}

func (r *Relay) Resume() {
	r.mu.Lock()
	if r.paused != nil {
		close(r.paused)
		r.paused = nil
	}
	r.mu.Unlock()
}

func (r *Relay) gate() {
	r.mu.Lock()
	p := r.paused
	r.mu.Unlock()
	if p != nil {
		<-p
	}
}

// New starts a relay to target on 127.0.0.1; the test's cleanup stops it.
func New(t testing.TB, target string) *Relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: target}
	r.wg.Add(1)
	go r.loop()
	t.Cleanup(func() { r.Close(); r.wg.Wait() })
	return r
}

func (r *Relay) Addr() string { return r.ln.Addr().String() }

func (r *Relay) loop() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			continue
		}
		d, err := net.Dial("tcp", r.target)
		if err != nil {
			r.mu.Unlock()
			c.Close()
			continue
		}
		r.conns = append(r.conns, c, d)
		r.mu.Unlock()
		r.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer r.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				r.gate()
				if n > 0 {
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					dst.Close()
					return
				}
			}
		}
		go pipe(c, d)
		go pipe(d, c)
	}
}

// Cut resets every connection the relay has, and from now on every new
// one as soon as it is accepted.
func (r *Relay) Cut() { r.end(true) }

// Fin is Cut with a graceful close (FIN) of the connections it has,
// as when the peer's host ends them.
func (r *Relay) Fin() { r.end(false) }

func (r *Relay) end(reset bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	for _, c := range r.conns {
		if reset {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	r.conns = nil
}

// Heal lets new connections through again.
func (r *Relay) Heal() {
	r.mu.Lock()
	r.cut = false
	r.mu.Unlock()
}

// Close stops the relay and resets everything it has (also done by the
// test's cleanup).
func (r *Relay) Close() {
	r.ln.Close()
	r.Resume()
	r.Cut()
}
