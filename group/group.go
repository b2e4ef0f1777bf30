package group

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// metaGroup is the hello metadata key carrying the group's name.
const metaGroup = "nearnet.group"

// frameOverhead bounds what a data frame adds to its payload with no
// destination list: kind, origin, epoch, seq, count, length, signature.
const frameOverhead = 1 + 16 + 8 + 8 + 2 + 4 + 1 + wire.MaxSigLen

// ErrClosed is returned by the methods of a Group that was closed.
var ErrClosed = errors.New("group: closed")

// Group is this node's membership of a group. Create it with [Join]. A
// Group is safe for concurrent use by multiple goroutines; [Group.Close]
// leaves the group and closes the node.
type Group struct {
	cfg    *Config
	name   string
	node   *nearnet.Node
	id     nearnet.PeerID
	signer crypto.Signer
	ecdh   *ecdh.PrivateKey              // the identity key for pair keys; nil: no authenticators
	trust  map[security.Fingerprint]bool // pinned mode: the keys a member may have; nil: any
	maxMsg int                           // the node's MaxMessageSize
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex // guards everything below
	self       *wire.GroupRecord
	seq        uint64 // the last sequence number sent
	members    map[nearnet.PeerID]*member
	streams    map[skey]*stream
	nbrs       map[nearnet.PeerID]*nbr
	retired    map[*nearnet.Conn]bool // Conns of retiring neighbours, until closed
	dialing    map[string]bool        // targets being dialed, by address or ID
	retryAt    map[string]time.Time   // when a failed target may be dialed again
	fails      map[string]int
	cands      map[nearnet.PeerID]nearnet.Advert // group nodes seen by browsing
	seenAt     map[nearnet.PeerID]time.Time      // when each candidate was first seen
	wantAt     map[nearnet.PeerID]time.Time      // since when an unconnected member has been wanted
	recvq      []Message
	recvCh     chan struct{} // closed and replaced when recvq grows
	roomCh     chan struct{} // closed and replaced when recvq shrinks or a queue drains
	events     []Event
	eventCh    chan struct{}
	closed     bool
	ticks      int                  // SyncIntervals so far
	progressed bool                 // a stream moved since the last digest
	maxQueue   int                  // the most frames ever queued for one neighbour (for measurements)
	pairKeys   map[pairID]*[32]byte // keys shared with other members, nil where there is none
	topo       topoCache
	alive      int    // members alive, this one included
	deferWake  bool   // set while a goroutine queues frames it then takes itself (takeDirectLocked)
	wakeDue    []*nbr // neighbours queued for while deferWake was set
	auth       authStats
}

type member struct {
	rec   *wire.GroupRecord
	pub   *ecdsa.PublicKey
	info  Member
	alive bool
}

type skey struct {
	origin nearnet.PeerID
	epoch  uint64
}

// stream is this member's progress through one sender's messages.
type stream struct {
	next       uint64            // the next sequence number to deliver
	pending    map[uint64][]byte // frames after a gap, by sequence number
	log        [][]byte          // delivered frames logStart..next-1, at most Retain
	logStart   uint64
	stuckSince time.Time // when pending last became non-empty or moved
}

// Join creates a node from cfg.Node, starts it listening (and advertising,
// unless cfg.Node.Hidden), and joins the group cfg.Name: it dials the
// seeds and, unless DisableBrowse, members found over DNS-SD. It returns
// once the node listens; members appear as [Joined] events. ctx bounds
// the start only.
func Join(ctx context.Context, cfg *Config) (*Group, error) {
	c, err := cfg.clone()
	if err != nil {
		return nil, err
	}
	var nc nearnet.Config
	if c.Node != nil {
		nc = *c.Node
	}
	nc.TXT = maps.Clone(nc.TXT)
	if nc.TXT == nil {
		nc.TXT = map[string]string{}
	}
	nc.Metadata = maps.Clone(nc.Metadata)
	if nc.Metadata == nil {
		nc.Metadata = map[string]string{}
	}
	if !nc.Hidden {
		nc.TXT[nearnet.TXTGroup] = c.Name
	}
	nc.Metadata[metaGroup] = c.Name
	appAdmit := nc.Admit
	nc.Admit = func(ctx context.Context, p nearnet.Peer) error {
		if g := p.Meta[metaGroup]; g != c.Name {
			return fmt.Errorf("not a member of group %q (it is in %q)", c.Name, g)
		}
		if appAdmit != nil {
			return appAdmit(ctx, p)
		}
		return nil
	}
	if nc.Identity == nil {
		if nc.Identity, err = security.NewIdentity(); err != nil {
			return nil, err
		}
	}
	cert := nc.Identity.TLSCertificate()
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok || len(cert.Certificate) == 0 {
		return nil, errors.New("group: the identity's key cannot sign")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("group: identity certificate: %w", err)
	}
	node, err := nearnet.NewNode(&nc)
	if err != nil {
		return nil, err
	}
	if err := node.Listen(ctx); err != nil {
		node.Close()
		return nil, err
	}
	g := &Group{
		cfg:      c,
		name:     c.Name,
		node:     node,
		id:       node.ID(),
		signer:   signer,
		ecdh:     ecdhKey(cert.PrivateKey),
		pairKeys: map[pairID]*[32]byte{},
		maxMsg:   nc.MaxMessageSize,
		log:      nc.Logger,
		members:  map[nearnet.PeerID]*member{},
		streams:  map[skey]*stream{},
		nbrs:     map[nearnet.PeerID]*nbr{},
		retired:  map[*nearnet.Conn]bool{},
		dialing:  map[string]bool{},
		retryAt:  map[string]time.Time{},
		fails:    map[string]int{},
		cands:    map[nearnet.PeerID]nearnet.Advert{},
		seenAt:   map[nearnet.PeerID]time.Time{},
		wantAt:   map[nearnet.PeerID]time.Time{},
		recvCh:   make(chan struct{}),
		roomCh:   make(chan struct{}),
		eventCh:  make(chan struct{}),
	}
	if g.maxMsg == 0 {
		g.maxMsg = nearnet.DefaultMaxMessageSize
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if len(nc.Trust) > 0 {
		g.trust = map[security.Fingerprint]bool{nc.Identity.Fingerprint(): true}
		for _, f := range nc.Trust {
			g.trust[f] = true
		}
	}
	var epoch [8]byte
	rand.Read(epoch[:])
	g.self = &wire.GroupRecord{
		ID:     g.id,
		Epoch:  beUint64(epoch[:]),
		Inc:    uint64(time.Now().UnixNano()),
		Status: wire.StatusAlive,
		Name:   node.Name(),
		Key:    leaf.RawSubjectPublicKeyInfo,
		Addrs:  listenAddrs(node.Addr()),
		By:     g.id,
	}
	if err := g.signRecord(g.self); err != nil {
		node.Close()
		return nil, err
	}
	pub, _ := leaf.PublicKey.(*ecdsa.PublicKey)
	g.members[g.id] = &member{rec: g.self, pub: pub, info: g.infoOf(g.self), alive: true}
	g.alive = 1
	g.streams[skey{g.id, g.self.Epoch}] = &stream{next: 1, logStart: 1}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(2)
	go g.acceptLoop()
	go g.tickLoop()
	if !c.DisableBrowse {
		g.wg.Add(1)
		go g.browseLoop()
	}
	g.mu.Lock()
	g.evalLocked()
	g.mu.Unlock()
	return g, nil
}

// Node returns the group's node (for its ID, address, or streams and
// resources with one member). Its Accept belongs to the group.
func (g *Group) Node() *nearnet.Node { return g.node }

// ID returns this member's peer ID.
func (g *Group) ID() nearnet.PeerID { return g.id }

// Members returns the members alive as this member knows them, itself
// included, ordered by ID.
func (g *Group) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ms []Member
	for _, m := range g.members {
		if m.alive {
			ms = append(ms, m.info)
		}
	}
	slices.SortFunc(ms, func(a, b Member) int { return a.ID.Compare(b.ID) })
	return ms
}

// Neighbours returns the members this one is connected to now (for
// measurements and tests; the group works the same whoever they are).
func (g *Group) Neighbours() []nearnet.PeerID {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := slices.Collect(maps.Keys(g.nbrs))
	slices.SortFunc(ids, nearnet.PeerID.Compare)
	return ids
}

// Send sends p to every member, or to the members listed in to. Each
// member receives this sender's messages in the order of the Sends, once.
// A member not in to still carries the message (to forward it) but does
// not deliver it: to selects, it does not hide. Send blocks, within ctx,
// while a neighbour's queue is more than half full (Config.MaxLag); it
// returns once the message is queued for every neighbour.
func (g *Group) Send(ctx context.Context, p []byte, to ...nearnet.PeerID) error {
	if len(to) > wire.MaxDests {
		return fmt.Errorf("group: %d destinations, at most %d", len(to), wire.MaxDests)
	}
	if len(p) > g.maxMsg-frameOverhead-16*len(to) {
		return fmt.Errorf("group: message of %d bytes: %w", len(p), nearnet.ErrMessageTooLarge)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		if g.closed {
			return ErrClosed
		}
		full := false
		for _, n := range g.nbrs {
			if len(n.q) > g.cfg.MaxLag/2 {
				full = true
				break
			}
		}
		if !full {
			break
		}
		room := g.roomCh
		g.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			g.mu.Lock()
			return ctx.Err()
		}
		g.mu.Lock()
	}
	g.seq++
	d := &wire.GroupDataFrame{Origin: g.id, Epoch: g.self.Epoch, Seq: g.seq, Payload: p}
	for _, id := range to {
		d.Dests = append(d.Dests, id)
	}
	digest := sha256.Sum256(wire.DataSigned(g.name, d))
	sig, err := g.signDigest(digest[:])
	if err != nil {
		g.seq--
		return err
	}
	d.Sig = sig
	if g.sparseLocked() {
		// Forwarded: each member checks its authenticator, not the
		// signature (which stays for members this one does not know).
		d.Tags = g.tagsLocked(&digest)
	}
	raw := wire.AppendGroupData(nil, d)
	st := g.streams[skey{g.id, g.self.Epoch}]
	st.appendLog(raw, g.cfg.Retain)
	st.next = g.seq + 1
	g.progressed = true
	g.deferWake = true
	for _, n := range g.nbrs {
		g.enqueueLocked(n, raw)
	}
	if fs := g.takeDirectLocked(); len(fs) > 0 {
		g.mu.Unlock()
		g.sendDirect(fs)
		g.mu.Lock() // for the deferred Unlock
	}
	return nil
}

// Receive returns the next message from another member, blocking until
// one arrives or ctx is done. After Close it returns ErrClosed.
func (g *Group) Receive(ctx context.Context) (Message, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.recvq) == 0 {
		if g.closed {
			return Message{}, ErrClosed
		}
		ch := g.recvCh
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			g.mu.Lock()
			return Message{}, ctx.Err()
		}
		g.mu.Lock()
	}
	m := g.recvq[0]
	g.recvq[0] = Message{}
	g.recvq = g.recvq[1:]
	wake(&g.roomCh)
	return m, nil
}

// NextEvent returns the next membership event, blocking until there is
// one or ctx is done. Events are kept until taken. After Close it returns
// ErrClosed once the events queued before are taken.
func (g *Group) NextEvent(ctx context.Context) (Event, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.events) == 0 {
		if g.closed {
			return Event{}, ErrClosed
		}
		ch := g.eventCh
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			g.mu.Lock()
			return Event{}, ctx.Err()
		}
		g.mu.Lock()
	}
	e := g.events[0]
	g.events = g.events[1:]
	return e, nil
}

// Close leaves the group: the other members see this one leave (a [Left]
// event with no error). It waits, up to the node's CloseTimeout, for the
// neighbours to take what is queued for them, then closes the node.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	bye := *g.self
	bye.Status = wire.StatusLeft
	bye.Head = g.seq
	if err := g.signRecord(&bye); err == nil {
		g.self = &bye
		g.floodRecordLocked(&bye, nil)
	}
	g.closed = true
	wake(&g.recvCh)
	wake(&g.eventCh)
	wake(&g.roomCh)
	nbrs := slices.Collect(maps.Values(g.nbrs))
	g.mu.Unlock()
	// Let every neighbour take what is queued (the leave above included).
	deadline := time.After(5 * time.Second)
	for _, n := range nbrs {
		select {
		case <-n.drained:
		case <-n.done:
		case <-deadline:
		}
	}
	err := g.node.Close()
	g.cancel()
	g.wg.Wait()
	return err
}

// acceptLoop takes every connection the node accepts: each is a member
// (Admit refused other groups) or a node about to become one.
func (g *Group) acceptLoop() {
	defer g.wg.Done()
	for {
		c, err := g.node.Accept(g.ctx)
		if err != nil {
			return
		}
		g.addConn(c, false)
	}
}

// browseLoop watches DNS-SD for nodes of the group.
func (g *Group) browseLoop() {
	defer g.wg.Done()
	err := g.node.Browse(g.ctx, func(e nearnet.BrowseEvent) {
		if e.Group != g.name || e.ID.IsZero() || e.ID == g.id {
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if e.Kind == nearnet.Lost {
			delete(g.cands, e.ID)
			delete(g.seenAt, e.ID)
			return
		}
		if _, ok := g.seenAt[e.ID]; !ok {
			g.seenAt[e.ID] = time.Now()
		}
		g.cands[e.ID] = e.Advert
		g.evalLocked()
	})
	if err != nil && g.ctx.Err() == nil {
		g.log.Warn("group: browsing failed", "err", err)
	}
}

// tickLoop runs the periodic work: digests to neighbours, the topology,
// lagging neighbours, streams stuck behind a gap.
func (g *Group) tickLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		if !g.closed {
			g.tickLocked(time.Now())
		}
		g.mu.Unlock()
	}
}

func (g *Group) tickLocked(now time.Time) {
	g.ticks++
	stuck := false
	for _, st := range g.streams {
		if len(st.pending) > 0 {
			stuck = true
			break
		}
	}
	// A digest when this member got further, when it waits behind a gap,
	// and now and then (a neighbour may be behind without knowing it).
	var digest []byte
	// (And while its topology has not settled: then a neighbour may have
	// skipped it on a tree it is not on yet.)
	if g.progressed || stuck || g.ticks%8 == 0 || (!g.topo.settled && g.sparseLocked()) {
		digest = wire.AppendGroupDigest(nil, g.digestLocked())
		g.progressed = false
	}
	for _, n := range g.nbrs {
		if n.ready && digest != nil {
			g.enqueueLocked(n, digest)
		}
		if len(n.q) > 0 && now.Sub(n.qat[0]) > g.cfg.LagTimeout {
			g.dropSlowLocked(n, fmt.Errorf("%v behind, %d messages waiting", now.Sub(n.qat[0]).Round(time.Millisecond), len(n.q)))
		}
	}
	// Stuck behind a gap for four intervals: ask every neighbour for
	// what it has, every fourth interval while it lasts. (A gap is given
	// up only when Retain messages wait behind it: never for time alone,
	// which on a slow machine would lose what is merely late.)
	var pull []wire.GroupEntry
	for k, st := range g.streams {
		if len(st.pending) == 0 {
			continue
		}
		if now.Sub(st.stuckSince) > 4*g.cfg.SyncInterval && g.ticks%4 == 0 {
			pull = append(pull, wire.GroupEntry{Origin: k.origin, Epoch: k.epoch, Next: st.next})
		}
	}
	if pull != nil {
		raw := wire.AppendGroupPull(nil, pull)
		for _, n := range g.nbrs {
			if n.ready {
				g.enqueueLocked(n, raw)
			}
		}
	}
	g.evalLocked()
}

// digestLocked lists how far this member has got with each sender.
func (g *Group) digestLocked() []wire.GroupEntry {
	es := make([]wire.GroupEntry, 0, len(g.streams))
	for k, st := range g.streams {
		es = append(es, wire.GroupEntry{Origin: k.origin, Epoch: k.epoch, Next: st.next})
	}
	return es
}

func (g *Group) eventLocked(e Event) {
	g.events = append(g.events, e)
	wake(&g.eventCh)
}

func (g *Group) infoOf(r *wire.GroupRecord) Member {
	return Member{ID: r.ID, Name: r.Name, Fingerprint: sha256.Sum256(r.Key), Addrs: slices.Clone(r.Addrs)}
}

func (g *Group) memberInfo(id nearnet.PeerID) Member {
	if m := g.members[id]; m != nil {
		return m.info
	}
	return Member{ID: id}
}

func (g *Group) sign(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	return g.signDigest(h[:])
}

func (g *Group) signDigest(h []byte) ([]byte, error) {
	sig, err := g.signer.Sign(rand.Reader, h, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("group: signing: %w", err)
	}
	return sig, nil
}

func (g *Group) signRecord(r *wire.GroupRecord) error {
	r.Sig = nil
	sig, err := g.sign(wire.RecordSigned(g.name, r))
	r.Sig = sig
	return err
}

func verify(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	h := sha256.Sum256(msg)
	return verifyDigest(pub, h[:], sig)
}

func verifyDigest(pub *ecdsa.PublicKey, h, sig []byte) bool {
	return pub != nil && ecdsa.VerifyASN1(pub, h, sig)
}

func parseKey(spki []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return pub, nil
}

// wake closes *ch and replaces it: everyone waiting on it looks again.
func wake(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// listenAddrs are the addresses to put in this member's record: the
// listener's, or with an unspecified host every address of the
// interfaces that are up (loopback ones only if there is nothing else).
func listenAddrs(a net.Addr) []string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return nil
	}
	port := strconv.Itoa(int(ap.Port()))
	if !ap.Addr().IsUnspecified() {
		return []string{ap.String()}
	}
	var out, loop []string
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			p, err := netip.ParsePrefix(ad.String())
			if err != nil {
				continue
			}
			ip := p.Addr()
			if ip.IsLinkLocalUnicast() || ip.IsMulticast() || (ip.Is6() && ap.Addr().Is4()) {
				continue
			}
			s := net.JoinHostPort(ip.String(), port)
			if ip.IsLoopback() {
				loop = append(loop, s)
			} else {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		out = loop
	}
	if len(out) > wire.MaxMemberAddrs {
		out = out[:wire.MaxMemberAddrs]
	}
	return out
}

func (st *stream) appendLog(raw []byte, retain int) {
	st.log = append(st.log, raw)
	if len(st.log) > retain {
		st.log[0] = nil
		st.log = st.log[1:]
		st.logStart++
	}
}
