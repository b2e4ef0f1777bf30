package relaytest

import (
	"net"
	"sync"
	"testing"
)

// UDPRelay forwards UDP datagrams to a target, each client address over a
// socket of its own, and back, until Cut: after that it drops everything
// both ways (a silent path, as UDP has no reset), until Heal.
type UDPRelay struct {
	pc     net.PacketConn
	target *net.UDPAddr
	mu     sync.Mutex // guards the fields below
	flows  map[string]*net.UDPConn
	cut    bool
	closed bool
	wg     sync.WaitGroup
}

// NewUDP starts a UDP relay to target on 127.0.0.1; the test's cleanup
// stops it.
func NewUDP(t testing.TB, target string) *UDPRelay {
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &UDPRelay{pc: pc, target: ta, flows: map[string]*net.UDPConn{}}
	r.wg.Add(1)
	go r.loop()
	t.Cleanup(r.Close)
	return r
}

func (r *UDPRelay) Addr() string { return r.pc.LocalAddr().String() }

func (r *UDPRelay) dropping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cut
}

func (r *UDPRelay) loop() {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut || r.closed {
			r.mu.Unlock()
			continue
		}
		up := r.flows[from.String()]
		if up == nil {
			up, err = net.DialUDP("udp", nil, r.target)
			if err != nil {
				r.mu.Unlock()
				continue
			}
			r.flows[from.String()] = up
			r.wg.Add(1)
			go r.back(up, from)
		}
		r.mu.Unlock()
		up.Write(buf[:n])
	}
}

// back forwards what the target sends on up to the client from.
func (r *UDPRelay) back(up *net.UDPConn, from net.Addr) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if err != nil {
			return
		}
		if !r.dropping() {
			r.pc.WriteTo(buf[:n], from)
		}
	}
}

// Cut drops every datagram from now on, both ways.
func (r *UDPRelay) Cut() {
	r.mu.Lock()
	r.cut = true
	r.mu.Unlock()
}

// Heal forwards again.
func (r *UDPRelay) Heal() {
	r.mu.Lock()
	r.cut = false
	r.mu.Unlock()
}

// Close stops the relay (also done by the test's cleanup).
func (r *UDPRelay) Close() {
	r.mu.Lock()
	r.closed = true
	for _, up := range r.flows {
		up.Close()
	}
	r.mu.Unlock()
	r.pc.Close()
	r.wg.Wait()
}
