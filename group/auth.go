package group

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// How a receiver knows a data frame's origin (PROTOCOL.md, "Groups"),
// cheapest first: it came from the origin itself over a connection that
// authenticated the origin's key; or it carries an authenticator for this
// member that the pair key of this member and the origin checks (an HMAC,
// about a microsecond); or the origin's signature verifies (an ECDSA
// verification, tens of microseconds). A forwarder cannot make either of
// the last two for another member's messages.

// pairID names a pair key: the other member and its key.
type pairID struct {
	id nearnet.PeerID
	fp security.Fingerprint
}

// authStats counts how received data frames were authenticated (for
// tests and measurements).
type authStats struct {
	Direct, Tagged, Signed uint64
	Forwarded, Pruned      uint64 // frames passed on to a neighbour, and not (pruned flooding)
}

// pairKeyLocked returns the key this member shares with m, deriving it
// (one ECDH) the first time; nil if either key cannot do ECDH.
func (g *Group) pairKeyLocked(m *member) *[32]byte {
	if g.ecdh == nil || m.pub == nil {
		return nil
	}
	pid := pairID{m.rec.ID, m.info.Fingerprint}
	if k, ok := g.pairKeys[pid]; ok {
		return k
	}
	var k *[32]byte
	if pub, err := m.pub.ECDH(); err == nil {
		if shared, err := g.ecdh.ECDH(pub); err == nil {
			kk := wire.GroupPairKey(g.name, g.id, m.rec.ID, shared)
			k = &kk
		}
	}
	g.pairKeys[pid] = k
	return k
}

// tagsLocked returns an authenticator for every other member alive whose
// key this member has, of the data frame whose signed bytes hash to digest.
func (g *Group) tagsLocked(digest *[32]byte) []wire.GroupTag {
	if g.ecdh == nil {
		return nil
	}
	tags := make([]wire.GroupTag, 0, len(g.members))
	for id, m := range g.members {
		if id == g.id || !m.alive {
			continue
		}
		if k := g.pairKeyLocked(m); k != nil {
			tags = append(tags, wire.GroupTag{To: [8]byte(id[:8]), Tag: wire.GroupTagOf(k, digest)})
		}
	}
	return tags
}

// authenticLocked reports whether d, which n passed on, is from the member
// m it names as its origin (see the top of this file).
func (g *Group) authenticLocked(n *nbr, m *member, d *wire.GroupDataFrame) bool {
	if g.directFromLocked(n, m) {
		g.auth.Direct++
		return true
	}
	digest := sha256.Sum256(wire.DataSigned(g.name, d))
	if k := g.pairKeyLocked(m); k != nil {
		for _, t := range d.Tags {
			if t.To != [8]byte(g.id[:8]) {
				continue
			}
			want := wire.GroupTagOf(k, &digest)
			if hmac.Equal(t.Tag[:], want[:]) {
				g.auth.Tagged++
				return true
			}
		}
	}
	if m.pub != nil && verifyDigest(m.pub, digest[:], d.Sig) {
		g.auth.Signed++
		return true
	}
	return false
}

// directFromLocked reports whether n is member m itself over a connection
// that authenticated m's key (its certificate is the key of m's record):
// what n sends as its own needs no other proof.
func (g *Group) directFromLocked(n *nbr, m *member) bool {
	if n.id != m.rec.ID {
		return false
	}
	fp := n.conn.Peer().Fingerprint
	return fp != (security.Fingerprint{}) && fp == m.info.Fingerprint
}

// ecdhKey is the identity key's ECDH form, nil if it has none.
func ecdhKey(k any) *ecdh.PrivateKey {
	type ecdher interface {
		ECDH() (*ecdh.PrivateKey, error)
	}
	if e, ok := k.(ecdher); ok {
		if pk, err := e.ECDH(); err == nil {
			return pk
		}
	}
	return nil
}

// authStats returns how many data frames this member took straight from
// their origin, by an authenticator, and by the origin's signature.
func (g *Group) authStats() authStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.auth
}
