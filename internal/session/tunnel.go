package session

import (
	"net/netip"
	"slices"

	"github.com/nearnet/nearnet/internal/transport/split"
)

// TunnelPaths, with Config.TunnelWithHost, remembers where Dials reached
// each peer over the host's sockets and over the stack, so that a redial
// round tries the other network's address right after the first.
type TunnelPaths struct {
	InTunnel func(netip.Addr) bool // the stack's networks
	paths    split.Paths
}

// NewTunnelPaths returns the TunnelPaths of a node whose Config has
// TunnelWithHost set to on and Tunnel t, or nil when it runs one network.
func NewTunnelPaths(on bool, t interface{ Contains(netip.Addr) bool }) *TunnelPaths {
	if !on || t == nil {
		return nil
	}
	return &TunnelPaths{InTunnel: t.Contains}
}

// note records that a dial to addr reached peer id.
func (t *TunnelPaths) note(id [16]byte, addr string) {
	if t != nil && id != ([16]byte{}) {
		t.paths.Note(string(id[:]), addr, split.InTunnel(addr, t.InTunnel))
	}
}

// withOther returns addrs with the address peer id was last reached at
// over the other network than addrs[0]'s inserted second.
func (t *TunnelPaths) withOther(id [16]byte, addrs []string) []string {
	if t == nil || len(addrs) == 0 {
		return addrs
	}
	p := t.paths.Other(string(id[:]), split.InTunnel(addrs[0], t.InTunnel))
	if p == "" || slices.Contains(addrs, p) {
		return addrs
	}
	return slices.Insert(slices.Clone(addrs), 1, p)
}
