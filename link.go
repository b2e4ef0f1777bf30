package nearnet

import (
	"bufio"
	crand "crypto/rand"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// A link is the link protocol (PROTOCOL.md: WebSocket frames carrying
// hellos, messages, acks and control) on one transport connection to a
// peer (a transport.Conn: TCP with TLS, or QUIC). A
// Conn owns one link at a time for sending and reads from every link it
// holds; a second link appears in a simultaneous open and one of the two is
// retired (see Conn.addLink and PROTOCOL.md, "Duplicate connections").
//
// Each link runs two goroutines: writeLoop drains the send queue, batching
// whatever accumulated while the previous write was in the kernel into one
// Write (so one TLS record carries many messages under load and a lone
// message leaves at once), and readLoop decodes frames and hands data
// messages to the Conn in sequence order.
type link struct {
	n        *Node
	t        transport.Conn         // the connection the link runs on
	wc       transport.WriteThrough // under nc (writethrough.go); nil where the transport has none
	nc       net.Conn               // t.Control(): the byte stream the frames travel on
	br       *bufio.Reader
	rd       *wire.Reader
	lim      *handshakeLimit
	outgoing bool
	dialed   string // the address dialed (outgoing links)
	key      string // Sec-WebSocket-Key: names the link on both sides
	peer     Peer
	c        *Conn        // set by Conn.addLink before the goroutines start
	flow     datagramFlow // the link's datagram flow, nil if either side has none
	hello    *wire.Hello  // the peer's hello, kept for the datagram offer

	streamKey [32]byte // proves stream connections (stream.go)
	handle    string   // names the link in stream opens

	// Resume (resume.go): the Conn this link was dialed to resume, the
	// resume offers of both hellos, and the peer's boot ID.
	resumeFor  *Conn
	myResume   *wire.Resume
	peerResume *wire.Resume
	peerBoot   string

	// Keepalive and viability (viability.go).
	rframes    atomic.Uint64 // frames read, for the keepalive timer
	ka         *time.Timer
	kaFrames   uint64 // rframes at the last tick; timer only
	kaSilent   time.Time
	kaPings    int
	kaInviable atomic.Bool // keepalives unanswered
	pathDown   atomic.Bool // the interface of the local address is down

	mu          sync.Mutex    // guards the fields below
	rng         *rand.ChaCha8 // masking keys, client side only
	buf         []byte        // frames waiting for the writer
	spare       []byte        // the writer's last buffer, for reuse
	room        chan struct{} // closed when the writer takes buf; nil if nobody waits
	sent        uint64        // data messages queued on this link
	closeQueued bool          // a close frame is in buf or written; no more frames
	peerClosed  bool          // the peer's close frame arrived
	peerCode    int           // its code and reason
	peerReason  string
	err         error       // why the link failed, if it did
	closeTimer  *time.Timer // bounds the wait for the peer's close frame
	writing     bool        // the writer goroutine or a write-through is writing to nc
	lastWrite   time.Time   // when the last write to nc ended (writethrough.go)

	// Reading (read.go): one goroutine at a time holds rmu and reads frames,
	// either the link's background reader or a ReceiveMessage caller.
	rmu      sync.Mutex
	bgActive bool          // the background reader should read; guarded by mu
	kicked   bool          // a read deadline was set to interrupt a read; guarded by mu
	bgWake   chan struct{} // cap 1: bgActive may have changed
	yielded  chan struct{} // cap 1: the background reader let go of rmu
	end      error         // a caller hit the end of the link; guarded by mu
	resume   *time.Timer   // hands reading back to the background after a caller
	stash    []byte        // a message a caller read out of turn; guarded by rmu
	stashSeq uint64

	wake       chan struct{} // cap 1: the writer has work
	dead       chan struct{} // closed when the link fails or is aborted
	writerDone chan struct{}
	recvSeq    uint64 // sequence number of the next data message; reader only
	gotBase    bool   // a base message arrived on this link; reader only
	resumed    bool   // the link resumed its Conn's session; set before it starts
}

var errRetired = errors.New("nearnet: link retired")

// handshakeLimit caps what the peer can make us buffer before the
// handshake is done (an endless HTTP header, say); afterwards it is lifted.
type handshakeLimit struct {
	r io.Reader
	n int64 // bytes still allowed; < 0: no limit
}

func (h *handshakeLimit) Read(p []byte) (int, error) {
	if h.n < 0 {
		return h.r.Read(p)
	}
	if h.n == 0 {
		return 0, &wire.ProtocolError{What: "handshake larger than 64 KiB"}
	}
	if int64(len(p)) > h.n {
		p = p[:h.n]
	}
	n, err := h.r.Read(p)
	h.n -= int64(n)
	return n, err
}

const readBufferSize = 64 << 10

// newLink makes a link over t; wc, if not nil, is the connection under
// t's control stream that write-through uses.
func newLink(n *Node, t transport.Conn, wc transport.WriteThrough, outgoing bool) *link {
	nc := t.Control()
	l := &link{
		n:          n,
		t:          t,
		wc:         wc,
		nc:         nc,
		outgoing:   outgoing,
		lim:        &handshakeLimit{r: nc, n: 64 << 10},
		wake:       make(chan struct{}, 1),
		bgWake:     make(chan struct{}, 1),
		yielded:    make(chan struct{}, 1),
		dead:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	l.br = bufio.NewReaderSize(l.lim, readBufferSize)
	l.rd = wire.NewReader(l.br, !outgoing, n.cfg.MaxMessageSize+1) // +1: the kind byte
	if outgoing {
		var seed [32]byte
		crand.Read(seed[:])
		l.rng = rand.NewChaCha8(seed)
	}
	return l
}

// appendFrameLocked appends one complete frame (masked when we are the
// client) carrying kind+body, or body alone when kind is 0.
func (l *link) appendFrameLocked(dst []byte, op wire.Opcode, kind wire.Kind, body []byte) []byte {
	n := len(body)
	if kind != 0 {
		n++
	}
	var key *[4]byte
	var k [4]byte
	if l.rng != nil {
		v := l.rng.Uint64()
		k = [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		key = &k
	}
	dst = wire.AppendHeader(dst, true, op, n, key)
	start := len(dst)
	if kind != 0 {
		dst = append(dst, byte(kind))
	}
	dst = append(dst, body...)
	if key != nil {
		wire.Mask(k, 0, dst[start:])
	}
	return dst
}

func (l *link) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// enqueueData queues one application message. It returns errRetired if the
// link takes no more data, or a channel to wait on if the queue is full.
func (l *link) enqueueData(p []byte, limit int) (wait <-chan struct{}, err error) {
	l.mu.Lock()
	if l.closeQueued || l.err != nil {
		l.mu.Unlock()
		return nil, errRetired
	}
	if len(l.buf) > 0 && len(l.buf)+len(p)+wire.MaxHeaderLen+1 > limit {
		if l.room == nil {
			l.room = make(chan struct{})
		}
		ch := l.room
		l.mu.Unlock()
		return ch, nil
	}
	l.buf = l.appendFrameLocked(l.buf, wire.OpBinary, wire.KindData, p)
	l.sent++
	if l.writeThroughLocked() {
		l.mu.Unlock()
		return nil, nil
	}
	l.mu.Unlock()
	l.signal()
	return nil, nil
}

// enqueueResend queues a logged message again on a resumed link,
// regardless of the send buffer limit (the log is bounded).
func (l *link) enqueueResend(m []byte) {
	l.mu.Lock()
	l.buf = l.appendFrameLocked(l.buf, wire.OpBinary, wire.KindData, m)
	l.sent++
	l.mu.Unlock()
	l.signal()
}

// enqueue queues a message or control frame regardless of the send buffer
// limit (they are small and few). It reports false if the link is closing.
func (l *link) enqueue(op wire.Opcode, kind wire.Kind, body []byte) bool {
	l.mu.Lock()
	if l.closeQueued || l.err != nil {
		l.mu.Unlock()
		return false
	}
	l.buf = l.appendFrameLocked(l.buf, op, kind, body)
	l.mu.Unlock()
	l.signal()
	return true
}

// closeWith queues a close frame behind whatever is queued: everything
// already queued is still sent. It returns how many data messages the link
// carried, so a successor can continue the numbering.
func (l *link) closeWith(code int, reason string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closeQueued && l.err == nil {
		l.closeQueued = true
		var p [wire.MaxControlPayload]byte
		var body []byte
		if code != wire.CloseNoStatus {
			body = wire.AppendClose(p[:0], code, reason)
		}
		l.buf = l.appendFrameLocked(l.buf, wire.OpClose, 0, body)
		l.signal()
	}
	return l.sent
}

// fail ends the link at once: the TCP connection is closed without a TLS
// close_notify (which could block on a peer that does not read).
func (l *link) fail(err error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
	close(l.dead)
	if l.ka != nil {
		l.ka.Stop()
	}
	l.mu.Unlock()
	l.t.End(endCodeFor(err))
	l.signal()
}

// endCodeFor is the code a transport that carries one (QUIC's
// CONNECTION_CLOSE) ends a link with after err: the one a close frame for
// err carries, so the peer learns the same whichever arrives first.
func endCodeFor(err error) (int, string) {
	switch {
	case errors.Is(err, errGracefulEnd):
		return wire.CloseNormal, ""
	case errors.Is(err, wire.ErrMessageTooLarge):
		return wire.CloseMessageTooBig, "message larger than the maximum"
	}
	if pe, ok := errorsAs[*wire.ProtocolError](err); ok {
		return wire.CloseProtocolError, pe.What
	}
	return wire.CloseAbnormal, "connection aborted"
}

var errGracefulEnd = errors.New("nearnet: link closed")

func (l *link) start() {
	l.lim.n = -1
	l.bgActive = true
	l.ka = time.AfterFunc(time.Hour, l.keepaliveTick)
	l.ka.Reset(l.n.cfg.KeepAliveInterval)
	l.resume = time.AfterFunc(time.Hour, l.resumeBackground)
	l.resume.Stop()
	go l.writeLoop()
	go l.readLoop()
}

func (l *link) writeLoop() {
	defer close(l.writerDone)
	limit := l.n.cfg.SendBuffer
	for {
		select {
		case <-l.wake:
		case <-l.dead:
			return
		}
		l.mu.Lock()
		if l.writing {
			// A SendMessage is writing through (writethrough.go); it
			// signals again if anything is left for us.
			l.mu.Unlock()
			continue
		}
		b := l.buf
		l.buf, l.spare = l.spare[:0], nil
		last := l.closeQueued
		if l.room != nil {
			close(l.room)
			l.room = nil
		}
		l.writing = true
		l.mu.Unlock()
		var err error
		if l.wc != nil {
			err = l.wc.Flush()
		}
		if err == nil && len(b) > 0 {
			_, err = l.nc.Write(b)
		}
		l.mu.Lock()
		l.writing = false
		l.lastWrite = time.Now()
		l.mu.Unlock()
		if err != nil {
			l.fail(err)
			return
		}
		if last {
			// Our close frame is out; give the peer CloseTimeout to answer.
			l.mu.Lock()
			if !l.peerClosed && l.err == nil {
				l.closeTimer = time.AfterFunc(l.n.cfg.CloseTimeout, func() {
					l.fail(errors.New("nearnet: peer did not answer the close within CloseTimeout"))
				})
			}
			l.mu.Unlock()
			return
		}
		if cap(b) <= 2*limit+readBufferSize {
			l.mu.Lock()
			l.spare = b[:0]
			l.mu.Unlock()
		}
	}
}

// finish ends the link after reading stopped: cleanly after the peer's
// close frame (errPeerClosed), or at once after an error; then tells the
// Conn. It runs on the link's reader goroutine.
func (l *link) finish(err error) {
	err = fromTransport(err)
	if err == errPeerClosed {
		// The peer's close arrived and ours is queued or sent: let the
		// writer finish, bounded by CloseTimeout, then end cleanly.
		err = nil
		t := time.NewTimer(l.n.cfg.CloseTimeout)
		select {
		case <-l.writerDone:
		case <-t.C:
			err = errors.New("nearnet: close not written within CloseTimeout")
		case <-l.dead:
		}
		t.Stop()
		l.nc.SetDeadline(time.Now().Add(time.Second))
		l.nc.Close() // TLS close_notify, then FIN
		if err == nil {
			err = errGracefulEnd
		}
	} else {
		var pe *wire.ProtocolError
		switch {
		case errors.As(err, &pe):
			l.closeWith(wire.CloseProtocolError, pe.What)
			l.flushBriefly()
			l.t.Drain(lingerTime)
		case errors.Is(err, wire.ErrMessageTooLarge):
			l.closeWith(wire.CloseMessageTooBig, "message larger than the maximum")
			l.flushBriefly()
			l.t.Drain(lingerTime)
		}
	}
	l.fail(err)
	<-l.writerDone
	l.resume.Stop()
	l.mu.Lock()
	if l.closeTimer != nil {
		l.closeTimer.Stop()
	}
	code, reason, peerClosed := l.peerCode, l.peerReason, l.peerClosed
	if _, bad := errorsAs[*wire.ProtocolError](l.err); l.err != nil && (errors.Is(err, net.ErrClosed) || bad) {
		err = l.err // the first failure (a write, bad input seen elsewhere) ended reading
	}
	l.mu.Unlock()
	if l.c != nil {
		l.c.linkEnded(l, err, peerClosed, code, reason)
	}
}

// failProtocol ends the link for bad input found outside its reader: a
// close frame saying why (1002), then the end.
func (l *link) failProtocol(pe *wire.ProtocolError) {
	l.closeWith(wire.CloseProtocolError, pe.What)
	l.flushBriefly()
	l.fail(pe)
}

// flushBriefly gives the writer a moment to send a queued close frame
// before the link is torn down after a protocol error.
func (l *link) flushBriefly() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-l.writerDone:
	case <-t.C:
	}
}

// lingerTime bounds the read-and-discard after a refusal of bad input.
// Closing a socket with unread bytes makes the kernel reset the
// connection, and the peer's kernel may then drop the close frame just
// sent before the peer has read it: it would see a reset instead of the
// reason (the lingering close of HTTP servers).
const lingerTime = 500 * time.Millisecond

// errPeerClosed reports that the peer's close frame arrived (and ours is
// queued): reading is over, cleanly.
var errPeerClosed = errors.New("nearnet: peer closed the link")

// readOne reads frames until a data message, which it returns with its
// sequence number; it answers pings and takes base messages on the way.
// It returns errPeerClosed after the peer's close frame, a timeout error
// when a deadline interrupted it (it can be called again), or another
// error when the link is broken. The caller holds l.rmu.
func (l *link) readOne() ([]byte, uint64, error) {
	for {
		op, p, err := l.rd.Next()
		if err != nil {
			return nil, 0, err
		}
		l.rframes.Add(1)
		switch op {
		case wire.OpBinary:
			if len(p) == 0 {
				return nil, 0, &wire.ProtocolError{What: "empty message (no kind byte)"}
			}
			switch wire.Kind(p[0]) {
			case wire.KindData:
				seq := l.recvSeq
				l.recvSeq++
				return p[1:], seq, nil
			case wire.KindBase:
				seq, err := wire.ParseBase(p[1:])
				if err != nil {
					return nil, 0, err
				}
				if l.recvSeq != 0 || l.gotBase {
					return nil, 0, &wire.ProtocolError{What: "base message after data or another base on the same link"}
				}
				if err := l.c.checkBase(l, seq); err != nil {
					return nil, 0, err
				}
				l.recvSeq, l.gotBase = seq, true
			case wire.KindAck:
				n, err := wire.ParseAck(p[1:])
				if err != nil {
					return nil, 0, err
				}
				if err := l.c.acked(n); err != nil {
					return nil, 0, err
				}
			case wire.KindStreamRequest:
				if !l.outgoing {
					return nil, 0, &wire.ProtocolError{What: "stream request from the link's dialer"}
				}
				q, err := wire.ParseStreamRequest(p[1:])
				if err != nil {
					return nil, 0, &wire.ProtocolError{What: "stream request: " + err.Error()}
				}
				c := l.c
				c.n.wg.Add(1)
				go func() {
					defer c.n.wg.Done()
					c.answerStreamRequest(l, q)
				}()
			case wire.KindStreamRefused:
				r, err := wire.ParseStreamRefused(p[1:])
				if err != nil {
					return nil, 0, &wire.ProtocolError{What: "stream refusal: " + err.Error()}
				}
				l.c.streamRefused(r)
			case wire.KindHello:
				return nil, 0, &wire.ProtocolError{What: "second hello"}
			default:
				if p[0] < 0x80 {
					return nil, 0, &wire.ProtocolError{What: "unknown message kind"}
				}
			}
		case wire.OpText:
			return nil, 0, &wire.ProtocolError{What: "text message; nearnet sends binary messages only"}
		case wire.OpPing:
			l.enqueue(wire.OpPong, 0, p)
		case wire.OpPong:
		case wire.OpClose:
			code, reason, _ := wire.ParseClose(p) // checked by the Reader
			l.mu.Lock()
			l.peerClosed, l.peerCode, l.peerReason = true, code, reason
			l.mu.Unlock()
			l.closeWith(code, "") // echo the code (an empty close answers an empty one)
			return nil, 0, errPeerClosed
		}
	}
}
