package group

import (
	"context"
	"encoding/binary"
	"math/bits"
	"slices"
	"time"

	"github.com/nearnet/nearnet"
)

// The topology (PROTOCOL.md, "Groups"): up to MeshLimit members, a full
// mesh; beyond it, a ring of peer IDs with chords. Every member computes
// the same edges from the same membership, so both ends of an edge agree
// on it.

// sparseLocked reports whether the group is past the full mesh.
func (g *Group) sparseLocked() bool { return g.alive > g.cfg.MeshLimit }

// ringPos is a member's place on the ring: its ID's first 64 bits.
func ringPos(id nearnet.PeerID) uint64 { return binary.BigEndian.Uint64(id[:8]) }

// chords returns the members that id dials in the sparse regime: its
// successor on the ring and degree-1 chords, at 1/2, and then down in
// even steps of the exponent to about 2/n, of the ring away. ids is
// sorted by ring position and holds id.
func chords(ids []nearnet.PeerID, id nearnet.PeerID, degree int) []nearnet.PeerID {
	n := len(ids)
	if n-1 <= degree {
		return slices.DeleteFunc(slices.Clone(ids), func(x nearnet.PeerID) bool { return x == id })
	}
	succ := func(p uint64) nearnet.PeerID {
		i, _ := slices.BinarySearchFunc(ids, p, func(x nearnet.PeerID, p uint64) int {
			switch xp := ringPos(x); {
			case xp <= p:
				return -1
			default:
				return 1
			}
		})
		return ids[i%n]
	}
	me := ringPos(id)
	out := []nearnet.PeerID{succ(me)}
	l := bits.Len(uint(n - 1)) // about log2 n
	for k := 1; k < degree; k++ {
		j := 1
		if degree > 2 && l > 2 {
			j = 1 + (k-1)*(l-2)/(degree-2)
		}
		t := succ(me + 1<<(64-j))
		if t != id && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	// Fill up with further successors when chords coincide.
	for i, _ := slices.BinarySearchFunc(ids, me, func(x nearnet.PeerID, p uint64) int {
		if ringPos(x) < p {
			return -1
		} else if ringPos(x) > p {
			return 1
		}
		return 0
	}); len(out) < degree; i++ {
		t := ids[(i+1)%n]
		if t == id {
			break
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func sortRing(ids []nearnet.PeerID) {
	slices.SortFunc(ids, func(a, b nearnet.PeerID) int {
		pa, pb := ringPos(a), ringPos(b)
		if pa < pb {
			return -1
		} else if pa > pb {
			return 1
		}
		return a.Compare(b)
	})
}

// edges returns whom each member dials in the sparse regime: its chords,
// except that a member takes chords from at most degree others (those
// nearest before it on the ring); its successor always dials it. So every
// member has at most 2*degree+1 neighbours, whatever the spread of IDs.
// ids is sorted by ring position.
func edges(ids []nearnet.PeerID, degree int) map[nearnet.PeerID][]nearnet.PeerID {
	n := len(ids)
	all := make(map[nearnet.PeerID][]nearnet.PeerID, n)
	choosers := make(map[nearnet.PeerID][]int, n) // indexes of the members choosing each, ring order
	for i, id := range ids {
		cs := chords(ids, id, degree)
		all[id] = cs
		for _, c := range cs[1:] {
			choosers[c] = append(choosers[c], i)
		}
	}
	index := make(map[nearnet.PeerID]int, n)
	for i, id := range ids {
		index[id] = i
	}
	refused := map[[2]nearnet.PeerID]bool{}
	for x, cs := range choosers {
		if len(cs) <= degree {
			continue
		}
		xi := index[x]
		// Nearest before x first: the smallest distance back along the ring.
		slices.SortFunc(cs, func(a, b int) int { return (xi-a+n)%n - (xi-b+n)%n })
		for _, a := range cs[degree:] {
			refused[[2]nearnet.PeerID{ids[a], x}] = true
		}
	}
	for id, cs := range all {
		kept := cs[:1:1]
		for _, c := range cs[1:] {
			if !refused[[2]nearnet.PeerID{id, c}] {
				kept = append(kept, c)
			}
		}
		all[id] = kept
	}
	return all
}

// wantedLocked returns the members this one should be connected to, and
// which of them it dials.
func (g *Group) wantedLocked() (want map[nearnet.PeerID]bool, dial []nearnet.PeerID) {
	var ids []nearnet.PeerID
	for id, m := range g.members {
		if m.alive {
			ids = append(ids, id)
		}
	}
	want = map[nearnet.PeerID]bool{}
	if len(ids) <= g.cfg.MeshLimit {
		for _, id := range ids {
			if id == g.id {
				continue
			}
			want[id] = true
			// The lower ID dials; the higher one too if nothing came.
			if g.id.Compare(id) < 0 {
				dial = append(dial, id)
			} else if t, ok := g.wantAt[id]; ok && time.Since(t) > 2*g.cfg.SyncInterval {
				dial = append(dial, id)
			}
		}
		return want, dial
	}
	sortRing(ids)
	dials := edges(ids, g.cfg.Degree)
	g.topoLocked(ids, dials, time.Now())
	dial = dials[g.id]
	for _, id := range dial {
		want[id] = true
	}
	for a, ds := range dials {
		if slices.Contains(ds, g.id) {
			want[a] = true
		}
	}
	return want, dial
}

// evalLocked compares the connections with the topology: it dials what is
// missing and closes, after a while, what is no longer wanted.
func (g *Group) evalLocked() {
	if g.closed {
		return
	}
	now := time.Now()
	want, dial := g.wantedLocked()
	for id := range want {
		if g.nbrs[id] == nil {
			if _, ok := g.wantAt[id]; !ok {
				g.wantAt[id] = now
			}
		}
	}
	for id := range g.wantAt {
		if !want[id] {
			delete(g.wantAt, id)
		}
	}
	for _, id := range dial {
		if g.nbrs[id] == nil {
			g.dialMemberLocked(id, now)
		}
	}
	// Candidates seen by browsing (or seeds) that are not members: dial
	// them when this member is alone, or when gossip has not brought them
	// in a while (two groups that formed apart then merge).
	alone := len(g.nbrs) == 0
	if alone {
		for _, s := range g.cfg.Seeds {
			g.dialAddrLocked(s, nearnet.PeerID{}, now)
		}
	}
	budget := 1
	if alone {
		budget = g.cfg.Degree
	}
	for _, id := range g.candOrderLocked() {
		if budget == 0 {
			break
		}
		if m := g.members[id]; m != nil || g.nbrs[id] != nil {
			continue
		}
		if !alone && now.Sub(g.seenAt[id]) < 3*g.cfg.SyncInterval {
			continue
		}
		if g.dialAdvertLocked(g.cands[id], now) {
			budget--
		}
	}
	g.topo.settled = false
	if !g.sparseLocked() {
		for _, n := range g.nbrs {
			n.unwanted = time.Time{}
		}
		return
	}
	// Extra neighbours do not matter: they are off the trees, which reach
	// them through the edges the topology has.
	settled := now.Sub(g.topo.changed) >= 2*g.cfg.SyncInterval
	for id := range want {
		if n := g.nbrs[id]; n == nil || !n.ready {
			settled = false
		}
	}
	g.topo.settled = settled
	// The side that dialed an edge retires it when its topology no longer
	// wants it; the other side keeps it (their views of the membership may
	// differ for a moment, and edges must not flap), unless it has more
	// neighbours than the topology allows and has not wanted this one for
	// long.
	limit := 2*g.cfg.Degree + 1
	for _, n := range g.nbrs {
		m := g.members[n.id]
		if want[n.id] || m == nil || !m.alive || len(g.nbrs) <= 1 {
			n.unwanted = time.Time{}
			continue
		}
		if n.unwanted.IsZero() {
			n.unwanted = now
		}
		unwanted := now.Sub(n.unwanted)
		// An edge neither end dialed (both dialed at once and each kept
		// the other's) is the lower ID's to close.
		owner := n.dialed || (g.id.Compare(n.id) < 0 && unwanted > 12*g.cfg.SyncInterval)
		if (owner && unwanted > 3*g.cfg.SyncInterval) || (len(g.nbrs) > limit && unwanted > 12*g.cfg.SyncInterval) {
			g.retireLocked(n)
		}
	}
}

// candOrderLocked lists the browsed candidates, nearest successors of
// this member first, so a newcomer's first edges are ring edges.
func (g *Group) candOrderLocked() []nearnet.PeerID {
	var ids []nearnet.PeerID
	for id := range g.cands {
		ids = append(ids, id)
	}
	me := ringPos(g.id)
	slices.SortFunc(ids, func(a, b nearnet.PeerID) int {
		da, db := ringPos(a)-me, ringPos(b)-me
		if da < db {
			return -1
		} else if da > db {
			return 1
		}
		return 0
	})
	return ids
}

// mayDialLocked reserves key for a dial unless one runs or it failed
// recently.
func (g *Group) mayDialLocked(key string, now time.Time) bool {
	if g.dialing[key] || now.Before(g.retryAt[key]) {
		return false
	}
	g.dialing[key] = true
	return true
}

func (g *Group) dialDone(key string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.dialing, key)
	if err == nil {
		delete(g.fails, key)
		delete(g.retryAt, key)
		return
	}
	g.fails[key]++
	back := 100 * time.Millisecond << min(g.fails[key], 5)
	g.retryAt[key] = time.Now().Add(back)
	g.log.Debug("group: dial failed", "target", key, "err", err)
}

// dialMemberLocked dials a member: through its advert when browsing saw
// it, else the addresses of its record.
func (g *Group) dialMemberLocked(id nearnet.PeerID, now time.Time) {
	if a, ok := g.cands[id]; ok {
		g.dialAdvertLocked(a, now)
		return
	}
	m := g.members[id]
	if m == nil || len(m.rec.Addrs) == 0 {
		return
	}
	key := id.String()
	if !g.mayDialLocked(key, now) {
		return
	}
	addrs := slices.Clone(m.rec.Addrs)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		var err error
		for _, a := range addrs {
			var c *nearnet.Conn
			if c, err = g.connect(a); err == nil {
				if c.Peer().ID != id {
					err = errWrongPeer
					c.Close()
					continue
				}
				g.addConn(c, true)
				break
			}
		}
		g.dialDone(key, err)
	}()
}

func (g *Group) dialAdvertLocked(a nearnet.Advert, now time.Time) bool {
	key := a.ID.String()
	if !g.mayDialLocked(key, now) {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithTimeout(g.ctx, 15*time.Second)
		defer cancel()
		c, err := g.node.ConnectAdvert(ctx, a)
		if err == nil {
			g.addConn(c, true)
		}
		g.dialDone(key, err)
	}()
	return true
}

// dialAddrLocked dials a seed address.
func (g *Group) dialAddrLocked(addr string, _ nearnet.PeerID, now time.Time) {
	if !g.mayDialLocked(addr, now) {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		c, err := g.connect(addr)
		if err == nil {
			if c.Peer().ID == g.id {
				c.Close()
			} else {
				g.addConn(c, true)
			}
		}
		g.dialDone(addr, err)
	}()
}

func (g *Group) connect(addr string) (*nearnet.Conn, error) {
	ctx, cancel := context.WithTimeout(g.ctx, 15*time.Second)
	defer cancel()
	return g.node.Connect(ctx, addr)
}

// Pruned flooding. Beyond MeshLimit a member forwards each new frame to
// its neighbours, but once its part of the topology is settled (the
// membership it knows has not changed for two sync intervals and it is
// connected to every neighbour the topology gives it) only along
// the origin's tree in the topology every member computes alike: to a
// neighbour one hop farther from the origin whose parent it is (of its
// neighbours one hop nearer the origin, the lowest ID). So each member
// receives a frame once instead of once per neighbour. Where views differ
// for a moment, a member that was skipped and stays behind gets the
// frames from the neighbours that skipped it, at its next digests
// (digestFromLocked).

// topoLocked brings the cached topology up to date with the members
// alive (ids, sorted by ring position) and the edges each dials.
func (g *Group) topoLocked(ids []nearnet.PeerID, dials map[nearnet.PeerID][]nearnet.PeerID, now time.Time) {
	if slices.Equal(ids, g.topo.ids) {
		return
	}
	adj := make(map[nearnet.PeerID][]nearnet.PeerID, len(ids))
	for a, ds := range dials {
		for _, b := range ds {
			adj[a] = append(adj[a], b)
			adj[b] = append(adj[b], a)
		}
	}
	g.topo = topoCache{ids: slices.Clone(ids), adj: adj, dist: map[nearnet.PeerID]*tree{}, changed: now}
}

// topoCache is the sparse topology this member computed last, and the
// distances from the origins it forwarded for.
type topoCache struct {
	ids     []nearnet.PeerID
	adj     map[nearnet.PeerID][]nearnet.PeerID
	dist    map[nearnet.PeerID]*tree
	changed time.Time // when the members alive last changed
	settled bool      // see above
}

// tree is an origin's broadcast tree: every member's hop count from it,
// and its parent (of its neighbours one hop nearer, the lowest ID).
type tree struct {
	dist   map[nearnet.PeerID]int
	parent map[nearnet.PeerID]nearnet.PeerID
}

// treeLocked returns origin's tree in the cached topology (nil if origin
// is not in it).
func (g *Group) treeLocked(origin nearnet.PeerID) *tree {
	if t, ok := g.topo.dist[origin]; ok {
		return t
	}
	var t *tree
	if _, ok := g.topo.adj[origin]; ok {
		t = &tree{dist: map[nearnet.PeerID]int{origin: 0}, parent: map[nearnet.PeerID]nearnet.PeerID{}}
		q := []nearnet.PeerID{origin}
		for len(q) > 0 {
			x := q[0]
			q = q[1:]
			for _, y := range g.topo.adj[x] {
				dy, seen := t.dist[y]
				switch {
				case !seen:
					t.dist[y] = t.dist[x] + 1
					t.parent[y] = x
					q = append(q, y)
				case dy == t.dist[x]+1 && x.Compare(t.parent[y]) < 0:
					t.parent[y] = x
				}
			}
		}
	}
	g.topo.dist[origin] = t
	return t
}

// forwardLocked passes a new frame of stream k from n on to the other
// neighbours (the origin aside), skipping those pruned flooding allows.
func (g *Group) forwardLocked(from *nbr, k skey, seq uint64, raw []byte) {
	var t *tree
	var mine int
	if g.topo.settled {
		t = g.treeLocked(k.origin)
		var ok bool
		if t != nil {
			if mine, ok = t.dist[g.id]; !ok {
				t = nil
			}
		}
	}
	for _, o := range g.nbrs {
		if o == from || o.id == k.origin {
			continue
		}
		if t == nil {
			g.auth.Forwarded++
			g.enqueueLocked(o, raw)
			continue
		}
		if d, ok := t.dist[o.id]; ok && (d <= mine || t.parent[o.id] != g.id) {
			if _, was := o.pruned[k]; !was {
				o.pruned[k] = seq
			}
			g.auth.Pruned++
			continue
		}
		g.auth.Forwarded++
		g.enqueueLocked(o, raw)
	}
}
