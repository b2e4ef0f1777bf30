package group

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// nbr is a neighbour: a member this one has a Conn with. Its fields are
// guarded by Group.mu.
type nbr struct {
	id       nearnet.PeerID
	conn     *nearnet.Conn
	q        [][]byte            // frames waiting for the writer
	recs     []*wire.GroupRecord // records waiting for the writer, sent (batched) before q once the hello is out
	helloOut bool                // the writer has sent the hello
	writing  bool                // a goroutine is sending frames taken from q
	qch      chan struct{}       // signalled when q grows
	qat      []time.Time         // when each frame of q was queued
	ready    bool                // its hello arrived
	behind   map[skey]uint64     // the neighbour's next, for streams where it was behind at its last digest
	stale    map[skey]int        // digests in a row it has been behind without progress
	floor    map[skey]uint64     // per stream, where forwarding to it began: what it can only get by repair is below
	pruned   map[skey]uint64     // per stream, the first frame pruned flooding did not forward to it
	unwanted time.Time           // since when the topology has not wanted it; zero if wanted
	wakeDue  bool                // frames were queued for it while Group.deferWake was set
	ended    bool                // removed from Group.nbrs, its queue dropped
	retiring bool                // removed from Group.nbrs, its queue still going; then closed
	dialed   bool                // this member dialed it: it decides whether the edge stays
	drained  chan struct{}       // closed when q is empty after Close
	done     chan struct{}       // closed when the writer returns
}

// addConn makes c a neighbour, unless it already is one.
func (g *Group) addConn(c *nearnet.Conn, dialed bool) {
	p := c.Peer()
	if p.Meta[metaGroup] != g.name {
		// A dialed seed or address of another group (Admit checks those
		// that dial in).
		g.log.Info("group: peer is not in this group", "peer", p.ID.Short(), "group", p.Meta[metaGroup])
		c.Close()
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		go c.Close()
		return
	}
	if g.retired[c] {
		return // it is closing; a later dial makes a new one
	}
	if old := g.nbrs[p.ID]; old != nil {
		if old.conn == c {
			return
		}
		g.endLocked(old)
	}
	n := &nbr{id: p.ID, conn: c, dialed: dialed, qch: make(chan struct{}, 1),
		behind: map[skey]uint64{}, stale: map[skey]int{}, floor: map[skey]uint64{}, pruned: map[skey]uint64{},
		drained: make(chan struct{}), done: make(chan struct{})}
	for k, st := range g.streams {
		f := st.next
		for s := range st.pending {
			f = max(f, s+1)
		}
		n.floor[k] = f
	}
	g.nbrs[p.ID] = n
	delete(g.wantAt, p.ID)
	g.enqueueLocked(n, wire.AppendGroupHello(nil, g.self, g.digestLocked()))
	var rs []*wire.GroupRecord
	for _, m := range g.members {
		if m.rec.ID != g.id {
			rs = append(rs, m.rec)
		}
	}
	for len(rs) > 0 {
		k := min(len(rs), 256)
		g.enqueueLocked(n, wire.AppendGroupMembers(nil, rs[:k]))
		rs = rs[k:]
	}
	g.wg.Add(2)
	go g.readLoop(n)
	go g.writeLoop(n)
}

// enqueueLocked queues raw for n; a neighbour that reaches MaxLag is
// dropped.
func (g *Group) enqueueLocked(n *nbr, raw []byte) {
	if n.ended {
		return
	}
	n.q = append(n.q, raw)
	n.qat = append(n.qat, time.Now())
	g.maxQueue = max(g.maxQueue, len(n.q))
	if len(n.q) >= g.cfg.MaxLag {
		g.dropSlowLocked(n, fmt.Errorf("%d messages queued", len(n.q)))
		return
	}
	if g.deferWake {
		// The goroutine that queued it sends it itself, if it can
		// (takeDirectLocked): waking the writer would only make it find
		// the queue taken.
		if !n.wakeDue {
			n.wakeDue = true
			g.wakeDue = append(g.wakeDue, n)
		}
		return
	}
	n.wakeWriter()
}

// wakeWriter tells n's writer to look at its queue again.
func (n *nbr) wakeWriter() {
	select {
	case n.qch <- struct{}{}:
	default:
	}
}

func (g *Group) dropSlowLocked(n *nbr, why error) {
	g.eventLocked(Event{Kind: Slow, Member: g.memberInfo(n.id), Via: n.id, Err: fmt.Errorf("group: neighbour dropped: %w", why)})
	g.endLocked(n)
	go n.conn.Abort()
}

// endLocked removes n; its goroutines end as its Conn does.
func (g *Group) endLocked(n *nbr) {
	if n.ended {
		return
	}
	n.ended = true
	n.retiring = false
	n.q = nil
	n.qat = nil
	n.recs = nil
	if g.nbrs[n.id] == n {
		delete(g.nbrs, n.id)
	}
	select {
	case n.qch <- struct{}{}:
	default:
	}
	wake(&g.roomCh)
}

// retireLocked removes n from the neighbours without losing what is
// queued for it: the writer sends it, then closes the Conn gracefully (the
// other side sees an end that loses no member).
func (g *Group) retireLocked(n *nbr) {
	if n.ended || n.retiring {
		return
	}
	n.retiring = true
	g.retired[n.conn] = true
	if g.nbrs[n.id] == n {
		delete(g.nbrs, n.id)
	}
	select {
	case n.qch <- struct{}{}:
	default:
	}
}

func (g *Group) writeLoop(n *nbr) {
	defer g.wg.Done()
	defer close(n.done)
	for {
		g.mu.Lock()
		for (n.writing || !n.hasWorkLocked()) && !n.ended {
			if !n.writing && n.retiring {
				g.mu.Unlock()
				n.conn.Close()
				g.mu.Lock()
				delete(g.retired, n.conn)
				g.mu.Unlock()
				return
			}
			if !n.writing && g.closed {
				select {
				case <-n.drained:
				default:
					close(n.drained)
				}
			}
			g.mu.Unlock()
			select {
			case <-n.qch:
			case <-g.ctx.Done():
				return
			}
			g.mu.Lock()
		}
		if n.ended {
			g.mu.Unlock()
			return
		}
		batch := n.takeLocked()
		n.writing = true
		g.mu.Unlock()
		var err error
		for _, raw := range batch {
			if err = n.conn.SendMessage(g.ctx, raw); err != nil {
				break
			}
		}
		g.mu.Lock()
		n.writing = false
		wake(&g.roomCh)
		g.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (n *nbr) hasWorkLocked() bool { return len(n.q) > 0 || (len(n.recs) > 0 && n.helloOut) }

// takeLocked takes what goes next to n: the hello alone, then gathered
// records before anything else, else up to 64 queued frames.
func (n *nbr) takeLocked() [][]byte {
	if len(n.recs) > 0 && n.helloOut {
		k := min(len(n.recs), 256)
		raw := wire.AppendGroupMembers(nil, n.recs[:k])
		n.recs = n.recs[k:]
		return [][]byte{raw}
	}
	k := 1
	if n.helloOut {
		k = min(len(n.q), 64)
	}
	out := slices.Clone(n.q[:k])
	clear(n.q[:k])
	n.q = n.q[k:]
	n.qat = n.qat[k:]
	n.helloOut = true
	return out
}

// A member passes frames on from the goroutine that has them (the reader
// of the neighbour they came from, or Send) when the neighbour's writer is
// idle and the connection takes them without waiting: a goroutine hand-
// over less per hop. What would wait goes back to the writer.

// flush is frames taken for a neighbour to send directly.
type flush struct {
	n    *nbr
	raws [][]byte
}

// takeDirectLocked takes the queued frames of the neighbours nobody is
// writing to, and wakes the writers of those it could not take from (see
// Group.deferWake).
func (g *Group) takeDirectLocked() []flush {
	var fs []flush
	for _, n := range g.nbrs {
		if n.writing || n.ended || !n.helloOut || len(n.recs) > 0 || len(n.q) == 0 {
			continue
		}
		n.writing = true
		fs = append(fs, flush{n, n.takeLocked()})
	}
	for _, n := range g.wakeDue {
		n.wakeDue = false
		if n.hasWorkLocked() {
			n.wakeWriter()
		}
	}
	clear(g.wakeDue)
	g.wakeDue = g.wakeDue[:0]
	g.deferWake = false
	return fs
}

// sendDirect sends what takeDirectLocked took, without g.mu, and gives
// what the connections would not take at once back to the writers.
func (g *Group) sendDirect(fs []flush) {
	rest := make([][][]byte, len(fs))
	for i, f := range fs {
		for j, raw := range f.raws {
			if err := f.n.conn.SendMessage(doneCtx, raw); err != nil {
				if errors.Is(err, context.Canceled) {
					rest[i] = f.raws[j:]
				}
				break // else the connection failed: its reader handles that
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for i, f := range fs {
		n := f.n
		n.writing = false
		if len(rest[i]) > 0 && !n.ended {
			n.q = append(rest[i], n.q...)
			qat := make([]time.Time, len(rest[i]), len(rest[i])+len(n.qat))
			for k := range qat {
				qat[k] = now
			}
			n.qat = append(qat, n.qat...)
		}
		// The writer waits while this goroutine writes: it has to look
		// again only if there is something for it to do.
		if n.hasWorkLocked() || n.retiring || n.ended || g.closed {
			n.wakeWriter()
		}
	}
	wake(&g.roomCh)
}

// doneCtx makes SendMessage return at once rather than wait.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (g *Group) readLoop(n *nbr) {
	defer g.wg.Done()
	for {
		p, err := n.conn.ReceiveMessage(g.ctx)
		if err != nil {
			g.connEnded(n, err)
			return
		}
		if g.duplicate(n, p) {
			continue
		}
		f, err := wire.ParseGroupFrame(p)
		if err != nil {
			g.log.Info("group: bad frame from neighbour", "peer", n.id.Short(), "err", err)
			g.mu.Lock()
			g.refuseLocked(n)
			g.mu.Unlock()
			return
		}
		g.mu.Lock()
		if n.ended {
			g.mu.Unlock()
			return
		}
		g.deferWake = true
		g.handleLocked(n, f, p)
		if fs := g.takeDirectLocked(); len(fs) > 0 {
			g.mu.Unlock()
			g.sendDirect(fs)
			g.mu.Lock()
		}
		// Back-pressure: stop reading while Receive is behind.
		for len(g.recvq) > g.cfg.ReceiveBuffer && !g.closed && !n.ended {
			room := g.roomCh
			g.mu.Unlock()
			select {
			case <-room:
			case <-g.ctx.Done():
			}
			g.mu.Lock()
			if g.ctx.Err() != nil {
				break
			}
		}
		g.mu.Unlock()
	}
}

// connEnded handles the end of a neighbour's Conn. A graceful close (a
// neighbour leaving, or an edge the topology no longer wants) loses no
// member; a failure (the session could not resume) loses the member, and
// this member tells the others.
func (g *Group) connEnded(n *nbr, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	wasNbr := !n.ended && !n.retiring
	g.endLocked(n)
	if g.closed || !wasNbr || errors.Is(err, io.EOF) || errors.Is(err, nearnet.ErrClosed) {
		g.evalLocked()
		return
	}
	m := g.members[n.id]
	if m == nil || !m.alive {
		g.evalLocked()
		return
	}
	// A failed connection is not yet a lost member (the neighbour may
	// have dropped this one, or the link alone broke): dial it. Only if
	// that fails too is it lost.
	rec := m.rec
	addrs := slices.Clone(rec.Addrs)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		var derr error = err
		for _, a := range addrs {
			c, cerr := g.connect(a)
			if cerr == nil && c.Peer().ID == rec.ID {
				g.addConn(c, true)
				return
			}
			if cerr == nil {
				c.Close()
				cerr = errWrongPeer
			}
			derr = fmt.Errorf("%w; then dialing it: %w", err, cerr)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		cur := g.members[rec.ID]
		if g.closed || cur == nil || cur.rec != rec || g.nbrs[rec.ID] != nil {
			return // it came back meanwhile, or changed
		}
		dead := *rec
		dead.Status = wire.StatusDead
		dead.By = g.id
		if g.signRecord(&dead) == nil {
			g.mergeLocked(&dead, nil, derr)
		}
		g.evalLocked()
	}()
	g.evalLocked()
}

// duplicate reports whether p is a data frame this member already has (a
// copy flooding brought): it is dropped before it is decoded.
func (g *Group) duplicate(n *nbr, p []byte) bool {
	const hdr = 1 + 16 + 8 + 8
	if len(p) < hdr || (p[0] != wire.GroupData && p[0] != wire.GroupTagged) {
		return false
	}
	k := skey{nearnet.PeerID(p[1:17]), binary.BigEndian.Uint64(p[17:25])}
	seq := binary.BigEndian.Uint64(p[25:33])
	g.mu.Lock()
	defer g.mu.Unlock()
	if !n.ready {
		return false
	}
	st := g.streams[k]
	return st != nil && seq != 0 && (seq < st.next || st.pending[seq] != nil)
}

// handleLocked takes frame f, decoded from p (which it may keep).
func (g *Group) handleLocked(n *nbr, f *wire.GroupFrame, p []byte) {
	if !n.ready && f.Kind != wire.GroupHello {
		g.protocolLocked(n, "frame before the hello")
		return
	}
	switch f.Kind {
	case wire.GroupHello:
		if n.ready {
			g.protocolLocked(n, "second hello")
			return
		}
		if f.Record.ID != n.id || f.Record.By != n.id || f.Record.Status != wire.StatusAlive {
			g.protocolLocked(n, "hello record is not the neighbour's own")
			return
		}
		n.ready = true
		// A newcomer starts each sender's stream where its first
		// neighbour is: what was sent before it joined is not its.
		for _, e := range f.Entries {
			k := skey{e.Origin, e.Epoch}
			if e.Origin != g.id && g.streams[k] == nil && e.Next > 0 {
				if m := g.members[e.Origin]; m != nil && m.rec.Epoch != e.Epoch {
					continue
				}
				g.streams[k] = &stream{next: e.Next, logStart: e.Next}
			}
		}
		g.mergeLocked(f.Record, n, nil)
	case wire.GroupMembers:
		for _, r := range f.Records {
			if n.ended {
				return
			}
			g.mergeLocked(r, n, nil)
		}
	case wire.GroupDigest:
		g.digestFromLocked(n, f.Entries)
	case wire.GroupPull:
		for _, e := range f.Entries {
			if st := g.streams[skey{e.Origin, e.Epoch}]; st != nil {
				for s := max(e.Next, st.logStart); s < st.next; s++ {
					g.enqueueLocked(n, st.log[s-st.logStart])
				}
			}
		}
	case wire.GroupData:
		g.dataLocked(n, f.Data, p)
	}
}

func (g *Group) protocolLocked(n *nbr, what string) {
	g.log.Info("group: protocol error", "peer", n.id.Short(), "what", what)
	g.refuseLocked(n)
}

// refuseLocked drops a neighbour that broke the protocol or forged a
// frame. Its Conn is closed with a close frame, not reset: a reset looks
// like a broken link to the neighbour, whose session redials to resume
// it; that dial, which this node no longer has the session for, becomes
// a new Conn here that ends at once (PROTOCOL.md section 11), both ends
// take that for a failure and redial, and several links between the two
// race (section 8). A close ends the neighbour's Conn for good; the
// topology dials again if it wants the edge.
func (g *Group) refuseLocked(n *nbr) {
	g.endLocked(n)
	go n.conn.Close()
}

func (g *Group) forgedLocked(n *nbr, claimed nearnet.PeerID, what string) {
	g.eventLocked(Event{Kind: Forged, Member: g.memberInfo(claimed), Via: n.id,
		Err: fmt.Errorf("group: %s forwarded %s claiming to be from %s; neighbour dropped", n.id.Short(), what, claimed.Short())})
	g.refuseLocked(n)
}

func newer(a, b *wire.GroupRecord) bool {
	return a.Inc > b.Inc || (a.Inc == b.Inc && a.Status > b.Status)
}

// mergeLocked takes a member record from n (nil: this member's own
// finding) if it is newer than what is known, after checking its
// signature, and passes it on to the other neighbours. lost, for a
// record this member made, is why the member was lost.
func (g *Group) mergeLocked(r *wire.GroupRecord, from *nbr, lost error) {
	if r.ID == g.id {
		if r.Epoch == g.self.Epoch && r.Status != wire.StatusAlive && newer(r, g.self) && !g.closed {
			// Someone lost us: say we are here.
			ref := *g.self
			ref.Inc = max(r.Inc+1, uint64(time.Now().UnixNano()))
			if g.signRecord(&ref) == nil {
				g.self = &ref
				g.members[g.id].rec = &ref
				g.floodRecordLocked(&ref, nil)
			}
		} else if r.Status == wire.StatusAlive && !bytes.Equal(r.Key, g.self.Key) && from != nil {
			g.forgedLocked(from, r.ID, "a record of this member")
		}
		return
	}
	cur := g.members[r.ID]
	if cur != nil && !newer(r, cur.rec) {
		return
	}
	// Who signed it: the member itself, or (for a loss) the neighbour
	// that lost it, whose key is known.
	var pub *ecdsa.PublicKey
	if r.By == r.ID {
		k, err := parseKey(r.Key)
		if err != nil {
			if from != nil {
				g.protocolLocked(from, "record key: "+err.Error())
			}
			return
		}
		pub = k
	} else {
		if r.Status != wire.StatusDead {
			if from != nil {
				g.protocolLocked(from, "record signed by another member")
			}
			return
		}
		by := g.members[r.By]
		if by == nil {
			return // cannot check it yet; the subject's own records settle it
		}
		pub = by.pub
	}
	if !verify(pub, wire.RecordSigned(g.name, r), r.Sig) {
		if from != nil {
			g.forgedLocked(from, r.By, "a member record")
		}
		return
	}
	fp := sha256.Sum256(r.Key)
	if g.trust != nil && !g.trust[fp] {
		if from != nil {
			g.forgedLocked(from, r.ID, "a record with an untrusted key")
		}
		return
	}
	if from != nil && from.id == r.ID {
		if pfp := from.conn.Peer().Fingerprint; pfp != (security.Fingerprint{}) && pfp != fp {
			g.forgedLocked(from, r.ID, "a record whose key is not its connection's")
			return
		}
	}
	if cur != nil && cur.rec.Epoch == r.Epoch && !bytes.Equal(cur.rec.Key, r.Key) {
		if from != nil {
			g.forgedLocked(from, r.ID, "a record with another key")
		}
		return
	}
	m := &member{rec: r, info: g.infoOf(r), alive: r.Status == wire.StatusAlive}
	if r.By == r.ID {
		m.pub = pub
	} else if cur != nil {
		m.pub = cur.pub
	}
	if m.pub == nil {
		m.pub, _ = parseKey(r.Key)
	}
	g.members[r.ID] = m
	if m.alive != (cur != nil && cur.alive) {
		if m.alive {
			g.alive++
		} else {
			g.alive--
		}
	}
	newRun := cur == nil || cur.rec.Epoch != r.Epoch
	if newRun && cur != nil {
		delete(g.streams, skey{r.ID, cur.rec.Epoch})
		if cur.alive {
			g.eventLocked(Event{Kind: Left, Member: cur.info, Err: errors.New("group: it started again")})
		}
	}
	k := skey{r.ID, r.Epoch}
	if g.streams[k] == nil && m.alive {
		g.streams[k] = &stream{next: r.Head + 1, logStart: r.Head + 1}
	}
	switch {
	case m.alive && (cur == nil || !cur.alive || newRun):
		g.eventLocked(Event{Kind: Joined, Member: m.info})
	case !m.alive && cur != nil && cur.alive && !newRun:
		var err error
		if r.Status == wire.StatusDead {
			err = fmt.Errorf("group: lost by %s", g.memberInfo(r.By).ID.Short())
			if lost != nil {
				err = fmt.Errorf("group: lost: %w", lost)
			}
		}
		g.eventLocked(Event{Kind: Left, Member: m.info, Err: err})
	}
	g.floodRecordLocked(r, from)
	g.evalLocked()
}

// floodRecordLocked queues r for every neighbour but from; each
// neighbour's writer sends what gathered in one frame.
func (g *Group) floodRecordLocked(r *wire.GroupRecord, from *nbr) {
	for _, n := range g.nbrs {
		if n != from && !n.ended {
			n.recs = append(n.recs, r)
			select {
			case n.qch <- struct{}{}:
			default:
			}
		}
	}
}

// dataLocked takes a data frame from n: it delivers it in order, once,
// and in the sparse regime forwards it.
func (g *Group) dataLocked(n *nbr, d *wire.GroupDataFrame, raw []byte) {
	if d.Origin == g.id {
		return
	}
	m := g.members[d.Origin]
	if m == nil {
		g.forgedLocked(n, d.Origin, "a message from an unknown member")
		return
	}
	k := skey{d.Origin, d.Epoch}
	st := g.streams[k]
	if st == nil {
		if m.rec.Epoch != d.Epoch {
			return // an earlier run of the member
		}
		st = &stream{next: m.rec.Head + 1, logStart: m.rec.Head + 1}
		g.streams[k] = st
	}
	if d.Seq < st.next || st.pending[d.Seq] != nil {
		return // a duplicate
	}
	if testDrop != nil && testDrop(g, n.id, d) {
		return
	}
	if !g.authenticLocked(n, m, d) {
		g.forgedLocked(n, d.Origin, "a message")
		return
	}
	if g.sparseLocked() {
		g.forwardLocked(n, k, d.Seq, raw)
	}
	if d.Seq > st.next {
		if st.pending == nil {
			st.pending = map[uint64][]byte{}
		}
		if len(st.pending) == 0 {
			st.stuckSince = time.Now()
		}
		st.pending[d.Seq] = raw
		if len(st.pending) > g.cfg.Retain {
			g.skipLocked(k, st)
		}
		return
	}
	g.deliverLocked(d, raw, st)
	g.drainLocked(k, st)
}

// drainLocked delivers what waited in pending behind the gap just filled.
func (g *Group) drainLocked(k skey, st *stream) {
	for len(st.pending) > 0 {
		raw, ok := st.pending[st.next]
		if !ok {
			return
		}
		delete(st.pending, st.next)
		st.stuckSince = time.Now()
		f, err := wire.ParseGroupFrame(raw)
		if err != nil { // cannot happen: we encoded it
			continue
		}
		g.deliverLocked(f.Data, raw, st)
	}
}

// skipLocked gives up the messages missing before the first pending one.
func (g *Group) skipLocked(k skey, st *stream) {
	first := slices.Min(slices.Collect(maps.Keys(st.pending)))
	if debugSkip != nil {
		debugSkip(g, k, st, first)
	}
	g.eventLocked(Event{Kind: Gap, Member: g.memberInfo(k.origin),
		Err: fmt.Errorf("group: messages %d to %d of %s were lost", st.next, first-1, k.origin.Short())})
	st.next = first
	st.log = nil
	st.logStart = first
	g.drainLocked(k, st)
}

func (g *Group) deliverLocked(d *wire.GroupDataFrame, raw []byte, st *stream) {
	st.next = d.Seq + 1
	g.progressed = true
	st.appendLog(raw, g.cfg.Retain)
	if len(d.Dests) > 0 && !slices.Contains(d.Dests, [16]byte(g.id)) {
		return
	}
	msg := Message{From: d.Origin, Seq: d.Seq, Payload: bytes.Clone(d.Payload)}
	for _, id := range d.Dests {
		msg.To = append(msg.To, id)
	}
	g.recvq = append(g.recvq, msg)
	wake(&g.recvCh)
}

// digestFromLocked answers a neighbour's digest: for each sender it has
// been behind on for two digests in a row, it gets what this member has
// and never sent it. In the sparse regime what arrived here after the
// neighbour joined was forwarded to it and is on its way, so only what
// is older goes (all of it once it has been stuck for eight digests);
// in the full mesh senders do not forward, so everything goes.
func (g *Group) digestFromLocked(n *nbr, es []wire.GroupEntry) {
	sparse := g.sparseLocked()
	for _, e := range es {
		k := skey{e.Origin, e.Epoch}
		st := g.streams[k]
		if st == nil || e.Next >= st.next {
			delete(n.behind, k)
			delete(n.stale, k)
			continue
		}
		prev, was := n.behind[k]
		n.behind[k] = e.Next
		if !was || prev < e.Next {
			n.stale[k] = 0
			continue
		}
		n.stale[k]++
		to := st.next
		if p, ok := n.pruned[k]; ok && p < st.next {
			// Pruned flooding skipped it: it gets all it lacks from the
			// first frame skipped on, once (the rest as below).
			for s := max(e.Next, st.logStart, p); s < st.next; s++ {
				g.enqueueLocked(n, st.log[s-st.logStart])
			}
			delete(n.pruned, k)
			to = min(to, p)
		}
		if (sparse || k.origin == g.id) && n.stale[k] < 8 {
			if f, ok := n.floor[k]; ok {
				to = min(to, f)
			} else {
				to = 0 // a stream that began after the neighbour came: all forwarded
			}
		}
		for s := max(e.Next, st.logStart); s < to; s++ {
			g.enqueueLocked(n, st.log[s-st.logStart])
		}
		if n.stale[k] >= 8 {
			n.stale[k] = 0
		}
	}
}

// testDrop, set by tests, drops the data frames it returns true for, as
// if the link had lost them.
var testDrop func(g *Group, from nearnet.PeerID, d *wire.GroupDataFrame) bool

// debugSkip, set by the multi-host test's helper process, is told each
// time a member gives messages up, to print the state behind the gap.
var debugSkip func(g *Group, k skey, st *stream, first uint64)
