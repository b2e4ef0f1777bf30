package split

import (
	"net"
	"net/netip"
	"sync"
)

// Paths remembers, per peer, the last address a node reached it at over
// the host's sockets and over the stack, so that a session whose path
// breaks is redialed over the other too. It is safe for concurrent use;
// the zero value is empty.
type Paths struct {
	mu sync.Mutex           // guards m
	m  map[string][2]string // peer -> host address, stack address
}

// maxPaths bounds what Paths holds: past it, it starts over.
const maxPaths = 1024

// InTunnel reports whether addr ("ip:port") is an address inTunnel takes.
func InTunnel(addr string, inTunnel func(netip.Addr) bool) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && inTunnel(ip)
}

func index(tunneled bool) int {
	if tunneled {
		return 1
	}
	return 0
}

// Note records that peer was reached at addr, over the stack if tunneled.
func (p *Paths) Note(peer, addr string, tunneled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPaths {
		p.m = make(map[string][2]string)
	}
	e := p.m[peer]
	e[index(tunneled)] = addr
	p.m[peer] = e
}

// Other returns where peer was last reached over the other network than
// an address that is tunneled or not, or "".
func (p *Paths) Other(peer string, tunneled bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[peer][index(!tunneled)]
}
