package nearnet

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Stream is a reliable, ordered, flow-controlled byte stream to a peer,
// opened with [Conn.OpenStream] and taken with [Conn.AcceptStream]: Multipeer
// Connectivity's startStream, with flow control. It is a [net.Conn] that
// can also half-close ([Stream.CloseWrite]).
//
// Each stream is a TCP connection of its own to the peer (TLS 1.3 unless
// the security mode is none), tied to the [Conn] by a proof over both TLS
// sessions (PROTOCOL.md, "Streams"), so bulk bytes pay no WebSocket framing
// and one stream never waits behind another or behind messages. Flow
// control is TCP's: a Write blocks while Config.StreamBuffer bytes and the
// socket buffers are full, that is while the peer does not read.
//
// A stream belongs to the application once opened or accepted: closing the
// Conn gracefully leaves it to finish; [Conn.Abort], a failed Conn and
// [Node.Close] end it.
type Stream struct {
	c    *Conn
	id   uint64
	name string
	meta map[string]string
	kind string
	st   transport.Stream // reads, deadlines, addresses
	w    transport.Sink   // writes

	taken bool // handed to the application; guarded by c.mu

	mu     sync.Mutex
	closed bool

	idle streamIdle // SetIdleTimeout (streamidle.go)
}

func (c *Conn) newStream(id uint64, name string, meta map[string]string, kind string, st transport.Stream) *Stream {
	s := &Stream{c: c, id: id, name: name, meta: meta, kind: kind, st: st}
	s.idle.start = time.Now()
	s.w = st.Sink(c.n.cfg.StreamBuffer, c.n.cfg.CloseTimeout, func() { c.dropStream(s) })
	return s
}

// Name returns the name the opener gave the stream.
func (s *Stream) Name() string { return s.name }

// Meta returns the metadata the opener gave the stream (nil if none).
// The map must not be modified.
func (s *Stream) Meta() map[string]string { return s.meta }

// Conn returns the connection the stream belongs to.
func (s *Stream) Conn() *Conn { return s.c }

// Read reads bytes the peer wrote. It returns io.EOF once the peer has
// half-closed or closed the stream and everything before was read.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.st.Read(p)
	if n > 0 {
		s.idle.touch()
	}
	if err != nil {
		if s.idle.expired.Load() {
			return n, s.idleErr("read", err)
		}
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return n, &net.OpError{Op: "read", Net: "nearnet", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: net.ErrClosed}
		}
	}
	return n, err
}

// Write queues p for the peer; see Config.StreamBuffer. Bytes Write
// accepted are sent even if the stream is closed right after.
func (s *Stream) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if n > 0 {
		s.idle.touch()
	}
	if err != nil {
		err = s.idleErr("write", err)
	}
	return n, err
}

// CloseWrite half-closes the stream: the peer reads EOF after the bytes
// already written, and this side can still read. Writes after it fail.
func (s *Stream) CloseWrite() error { return s.w.CloseWrite() }

// Close closes the stream: pending Reads and Writes return at once; bytes
// already written are still sent, for up to Config.CloseTimeout, then the
// peer reads EOF.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return &net.OpError{Op: "close", Net: "nearnet", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: net.ErrClosed}
	}
	s.closed = true
	s.mu.Unlock()
	s.st.SetReadDeadline(aLongTimeAgo)
	s.w.Close(false)
	return nil
}

// Abort closes the stream at once, dropping bytes not yet sent; the peer
// sees the connection reset.
func (s *Stream) Abort() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.st.Abort()
	s.w.Close(true)
}

// LocalAddr returns the local address of the stream's connection.
func (s *Stream) LocalAddr() net.Addr { return s.st.LocalAddr() }

// RemoteAddr returns the peer's address of the stream's connection.
func (s *Stream) RemoteAddr() net.Addr { return s.st.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for pending and future Reads.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil // Close set its own to wake readers
	}
	return s.st.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline for pending and future Writes. A
// Write that times out has sent what it reports; the stream goes on.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.w.SetDeadline(t)
	return nil
}

// StreamError reports a stream the peer refused or that could not be set
// up; the Conn itself is unaffected.
type StreamError struct {
	Name string
	Err  error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("nearnet: stream %q: %v", e.Name, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// OpenStream opens a stream named name to the peer, which takes it with
// AcceptStream. It returns once the peer's node has taken the stream into
// its backlog (Config.StreamBacklog); it does not wait for the
// application there to accept it.
func (c *Conn) OpenStream(ctx context.Context, name string) (*Stream, error) {
	return c.openStream(ctx, name, nil, wire.StreamKindBytes)
}

// OpenStreamMeta is OpenStream with metadata the acceptor sees with the
// name, before it reads anything: at most 64 keys, 4 KiB in all.
func (c *Conn) OpenStreamMeta(ctx context.Context, name string, meta map[string]string) (*Stream, error) {
	return c.openStream(ctx, name, maps.Clone(meta), wire.StreamKindBytes)
}

// AcceptStream returns the next stream the peer opened.
func (c *Conn) AcceptStream(ctx context.Context) (*Stream, error) {
	select {
	case s := <-c.streamq:
		return c.takeStream(s), nil
	default:
	}
	select {
	case s := <-c.streamq:
		return c.takeStream(s), nil
	case <-c.s.Ended():
		return nil, c.endErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Conn) takeStream(s *Stream) *Stream {
	c.mu.Lock()
	c.streamsQueued--
	s.taken = true
	c.mu.Unlock()
	return s
}

// endErr is what stream calls return once the Conn has ended.
func (c *Conn) endErr() error { return c.s.EndErr() }

func (c *Conn) openStream(ctx context.Context, name string, meta map[string]string, kind string) (*Stream, error) {
	serr := func(err error) error { return &StreamError{Name: name, Err: err} }
	if err := wire.CheckStream(name, meta, kind); err != nil {
		return nil, serr(err)
	}
	l, err := c.s.StreamPath(ctx)
	if err != nil {
		return nil, serr(err)
	}
	c.mu.Lock()
	c.nextStream++
	id := c.nextStream
	c.mu.Unlock()
	s, err := c.dialStream(ctx, l, &wire.StreamOpen{ID: id, Name: name, Meta: meta, Kind: kind})
	if !errors.Is(err, transport.ErrPeerOpens) {
		if err != nil {
			return nil, serr(err)
		}
		return s, nil
	}
	// Only the peer opens streams of this link's connection (we are a TCP
	// link's listener): ask it to.
	req, err := wire.AppendStreamRequest(nil, &wire.StreamRequest{ID: id, Name: name, Meta: meta, Kind: kind})
	if err != nil {
		return nil, serr(err)
	}
	ch := make(chan streamResult, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.pending = make(map[uint64]*pendingStream)
	}
	c.pending[id] = &pendingStream{name: name, meta: meta, kind: kind, ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if !l.Enqueue(wire.OpBinary, 0, req) {
		return nil, serr(errors.New("the connection is closing"))
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, serr(r.err)
		}
		return r.s, nil
	case <-c.s.Ended():
		return nil, serr(c.endErr())
	case <-ctx.Done():
		// The dialer's stream may still come; acceptStream finds no
		// pending entry then and refuses it.
		return nil, serr(ctx.Err())
	}
}

type streamResult struct {
	s   *Stream
	err error
}

type pendingStream struct {
	name string
	meta map[string]string
	kind string
	ch   chan streamResult
}

// Stream handshake labels (PROTOCOL.md, "Streams").
const (
	streamKeyLabel      = "EXPORTER-nearnet-stream-key"
	streamExporterLabel = "EXPORTER-nearnet-stream"
)

// setStreamKey derives the link's stream key and handle (streamKeys).
func setStreamKey(l *link, cs *tls.ConnectionState) error {
	k, h, err := streamKeys(l.Key(), cs)
	if err != nil {
		return err
	}
	l.StreamKey, l.Handle = k, h
	return nil
}

// streamKeys derives a link's stream key and handle from its TLS session
// (or, with SecurityNone, from its WebSocket key wsKey, which protects
// nothing, as nothing is protected in that mode).
func streamKeys(wsKey string, cs *tls.ConnectionState) (key [32]byte, handle string, err error) {
	if cs != nil {
		k, err := cs.ExportKeyingMaterial(streamKeyLabel, nil, 32)
		if err != nil {
			return key, "", err
		}
		copy(key[:], k)
	} else {
		key = sha256.Sum256([]byte("nearnet-stream-none\x00" + wsKey))
	}
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("handle"))
	return key, hex.EncodeToString(m.Sum(nil)[:16]), nil
}

// streamProof binds a stream connection's TLS session (its exporter) to
// the link's key, so that only the two peers of the link can tie a stream
// to it, and a relay between two TLS sessions cannot.
func streamProof(key *[32]byte, role string, exporter []byte, o *wire.StreamOpen) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("nearnet-stream-v1 " + role + "\x00"))
	m.Write(exporter)
	m.Write([]byte(o.Handle))
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], o.ID)
	if o.Reply {
		b[8] = 1
	}
	m.Write(b[:])
	return m.Sum(nil)
}

func streamExporter(cs *tls.ConnectionState) ([]byte, error) {
	if cs == nil {
		return nil, nil
	}
	return cs.ExportKeyingMaterial(streamExporterLabel, nil, 32)
}

// dialStream opens a stream to the peer of l over l's transport and runs
// its handshake. It returns transport.ErrPeerOpens where only the peer can
// open streams of l's connection.
func (c *Conn) dialStream(ctx context.Context, l *link, o *wire.StreamOpen) (*Stream, error) {
	st, err := l.T.OpenStream(ctx)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			err = c.endErr()
		}
		return nil, fromTransport(err)
	}
	ok := false
	defer func() {
		if !ok {
			st.Abort()
		}
	}()
	st.SetDeadline(c.n.deadlineFor(ctx))
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(aLongTimeAgo) })
	defer stop()
	cs := st.TLS()
	if cs != nil && certFingerprint(cs) != l.Peer.Fingerprint {
		return nil, errors.New("the stream's TLS peer is not the connection's peer")
	}
	exp, err := streamExporter(cs)
	if err != nil {
		return nil, err
	}
	s, err := c.streamHandshake(ctx, l, st, exp, o)
	if err != nil {
		return nil, err
	}
	ok = true
	if !stop() {
		s.Abort()
		return nil, ctx.Err()
	}
	return c.keepOpened(s, o)
}

// streamHandshake opens a stream over st (its own TLS session's exporter
// exp, or nil when it shares the link's): the StreamOpen with its proof,
// the acceptor's answer and its proof.
func (c *Conn) streamHandshake(ctx context.Context, l *link, st transport.Stream, exp []byte, o *wire.StreamOpen) (*Stream, error) {
	o.Handle = l.Handle
	o.Proof = streamProof(&l.StreamKey, "client", exp, o)
	b, err := wire.AppendStreamOpen(nil, o)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write(b); err != nil {
		return nil, err
	}
	a, err := wire.ReadStreamAnswer(st)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, err
	}
	if !a.OK {
		return nil, &RejectedError{Code: 0, Reason: a.Error}
	}
	if !hmac.Equal(a.Proof, streamProof(&l.StreamKey, "server", exp, o)) {
		return nil, errors.New("the peer's stream proof does not match: not the connection's peer")
	}
	st.SetDeadline(time.Time{})
	return c.newStream(o.ID, o.Name, o.Meta, o.Kind, st), nil
}

// keepOpened records a stream this side opened, unless c has ended.
func (c *Conn) keepOpened(s *Stream, o *wire.StreamOpen) (*Stream, error) {
	s.taken = !o.Reply // opened by the application, not for its AcceptStream
	if !c.keepStream(s) {
		s.Abort()
		return nil, c.endErr()
	}
	return s, nil
}

// keepStream records s as one of c's streams, unless c has ended.
func (c *Conn) keepStream(s *Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.Terminal() { // the session's lock comes after c.mu
		return false
	}
	if c.streams == nil {
		c.streams = make(map[*Stream]struct{})
	}
	c.streams[s] = struct{}{}
	return true
}

func (c *Conn) dropStream(s *Stream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}

// streamsWhere returns c's streams that keep says to take.
func (c *Conn) streamsWhere(keep func(*Stream) bool) []*Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ss []*Stream
	for s := range c.streams {
		if keep(s) {
			ss = append(ss, s)
		}
	}
	return ss
}

// abortStreams ends every stream of c at once, queued ones included.
func (c *Conn) abortStreams() {
	for _, s := range c.streamsWhere(func(*Stream) bool { return true }) {
		s.Abort()
	}
}

// endStreams runs once the Conn has ended: streams the application has
// not taken are aborted, and all of them if the Conn failed or was
// aborted. (keep runs with c.mu held.)
func (c *Conn) endStreams() {
	for _, s := range c.streamsWhere(func(s *Stream) bool { return !s.taken || c.aborted.Load() }) {
		s.Abort()
	}
}

// closeStreams closes every stream of c gracefully (Node.Close).
func (c *Conn) closeStreams() {
	for _, s := range c.streamsWhere(func(*Stream) bool { return true }) {
		s.Close()
		<-s.w.Done()
	}
}

// streamEntry ties a link handle to its Conn and key for incoming streams.
type streamEntry struct {
	c   *Conn
	key [32]byte
}

// acceptStream handles an incoming stream connection whose first bytes
// were the stream magic. br holds what was read from nc.
func (n *Node) acceptStream(st transport.Stream, br *bufio.Reader) error {
	refuse := func(msg string) error {
		b, _ := wire.AppendStreamAnswer(nil, &wire.StreamAnswer{Error: msg})
		st.SetWriteDeadline(time.Now().Add(time.Second))
		st.Write(b)
		st.Close()
		return errors.New(msg)
	}
	o, err := wire.ReadStreamOpen(br)
	if err != nil {
		if _, ok := errorsAs[*wire.StreamError](err); ok {
			return refuse(err.Error())
		}
		st.Close()
		return err
	}
	if br.Buffered() > 0 {
		return refuse("bytes after the stream open before the answer")
	}
	e, found := n.handle(o.Handle, time.Now().Add(min(n.cfg.HandshakeTimeout, 2*time.Second)))
	if !found {
		return refuse("no such connection (unknown handle)")
	}
	c := e.c
	cs := st.TLS()
	if cs != nil && certFingerprint(cs) != c.Peer().Fingerprint {
		return refuse("the stream's TLS peer is not the connection's peer")
	}
	exp, err := streamExporter(cs)
	if err != nil {
		return refuse(err.Error())
	}
	if !hmac.Equal(o.Proof, streamProof(&e.key, "client", exp, o)) {
		return refuse("stream proof does not match")
	}
	var ps *pendingStream
	c.mu.Lock()
	switch {
	case c.s.Terminal():
		c.mu.Unlock()
		return refuse("the connection has ended")
	case o.Reply:
		ps = c.pending[o.ID]
		delete(c.pending, o.ID)
		if ps == nil {
			c.mu.Unlock()
			return refuse("no stream request with that id is waiting")
		}
		o.Name, o.Meta, o.Kind = ps.name, ps.meta, ps.kind
	case !c.reserveLocked(o.Kind):
		c.mu.Unlock()
		return refuse(errBacklogFull.Error())
	}
	c.mu.Unlock()
	b, _ := wire.AppendStreamAnswer(nil, &wire.StreamAnswer{OK: true, Proof: streamProof(&e.key, "server", exp, o)})
	_, err = st.Write(b)
	st.SetDeadline(time.Time{})
	s := c.newStream(o.ID, o.Name, o.Meta, o.Kind, st)
	if err != nil || !c.keepStream(s) {
		s.Abort()
		c.unreserve(o)
		if ps != nil {
			ps.ch <- streamResult{err: errors.New("the stream connection failed")}
		}
		return err
	}
	switch {
	case ps != nil:
		ps.ch <- streamResult{s: s}
	case o.Kind == wire.StreamKindResource:
		c.offerResource(s)
	default:
		c.streamq <- s // never blocks: a place was reserved
	}
	return nil
}

// acceptStreams takes, in the background, the streams the peer opens on
// l's transport connection, where streams arrive on the connection itself
// (QUIC); TCP stream connections arrive at the listener instead.
func (n *Node) acceptStreams(l *link) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			// Ends with the connection (or at once: transport.ErrNoStreams).
			st, err := l.T.AcceptStream(context.Background())
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				st.SetDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
				if err := n.acceptStream(st, bufio.NewReader(st)); err != nil {
					n.cfg.Logger.Debug("nearnet: incoming stream refused", "peer", PeerID(l.Peer.ID).Short(), "err", err)
				}
			}()
		}
	}()
}

var errBacklogFull = errors.New("too many streams or resource offers waiting to be accepted")

// reserveLocked takes a place in the backlog of streams or of resource
// offers, if there is one. c.mu is held.
func (c *Conn) reserveLocked(kind string) bool {
	n := &c.streamsQueued
	if kind == wire.StreamKindResource {
		n = &c.resourcesQueued
	}
	if *n >= c.n.cfg.StreamBacklog {
		return false
	}
	*n++
	return true
}

func (c *Conn) unreserve(o *wire.StreamOpen) {
	if o.Reply {
		return
	}
	c.mu.Lock()
	if o.Kind == wire.StreamKindResource {
		c.resourcesQueued--
	} else {
		c.streamsQueued--
	}
	c.mu.Unlock()
}

// answerStreamRequest runs on the link's dialer when the listener asked
// for a stream: it opens it and queues it for AcceptStream (or as a
// resource offer), or tells the listener why it could not.
func (c *Conn) answerStreamRequest(l *link, q *wire.StreamRequest) {
	refuse := func(err error) {
		l.Enqueue(wire.OpBinary, 0, wire.AppendStreamRefused(nil, &wire.StreamRefused{ID: q.ID, Error: err.Error()}))
	}
	c.mu.Lock()
	ok := c.reserveLocked(q.Kind)
	c.mu.Unlock()
	if !ok {
		refuse(errBacklogFull)
		return
	}
	o := &wire.StreamOpen{ID: q.ID, Reply: true}
	ctx, cancel := context.WithTimeout(context.Background(), c.n.cfg.HandshakeTimeout)
	defer cancel()
	s, err := c.dialStream(ctx, l, o)
	if err != nil {
		c.unreserve(&wire.StreamOpen{Kind: q.Kind})
		refuse(err)
		return
	}
	s.name, s.meta, s.kind = q.Name, q.Meta, q.Kind
	if q.Kind == wire.StreamKindResource {
		c.offerResource(s)
		return
	}
	c.streamq <- s
}

// streamRefused runs on the link's listener when its request failed.
func (c *Conn) streamRefused(r *wire.StreamRefused) {
	c.mu.Lock()
	ps := c.pending[r.ID]
	delete(c.pending, r.ID)
	c.mu.Unlock()
	if ps != nil {
		ps.ch <- streamResult{err: &RejectedError{Reason: r.Error}}
	}
}
