// Package link is nearnet's link protocol (PROTOCOL.md: WebSocket frames
// carrying hellos, messages, acks and control) on one transport connection:
// the upgrade and hello exchange, framing into a send buffer, the writer
// goroutine and the write-through that bypasses it, the background reader
// and the direct read that lets a receiver read the link itself, keepalive
// pings, and the close handshake.
//
// A [Link] knows nothing of the session it carries: it reports data
// messages, acks, base messages, stream requests, keepalive changes and its
// end to its owner through a [Handler], and asks the owner the few things
// the direct read needs.
package link

import (
	"bufio"
	crand "crypto/rand"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/internal/budget"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Config holds what a link needs of the node's configuration. The node
// fills every field; New copies it.
type Config struct {
	MaxMessageSize    int           // the largest data message taken from the peer
	SendBuffer        int           // bytes queued before EnqueueData asks the sender to wait
	CloseTimeout      time.Duration // how long the peer has to answer our close frame
	KeepAliveIdle     time.Duration // silence before the first ping
	KeepAliveInterval time.Duration // how often the keepalive looks
	KeepAliveCount    int           // unanswered pings before the link is inviable
	Logger            *slog.Logger  // debug messages; nil: none
}

// ExtensionHandler is offered by a Handler that takes messages of
// extension kinds (0x80 and above); without it they are ignored.
// Extension must not block the reader; body is the owner's.
type ExtensionHandler interface {
	Extension(kind wire.Kind, body []byte)
}

// Handler is the link's owner (the session). The link calls it from its
// reader (the background reader goroutine, or a receiver reading directly,
// see [Link.ReadDirect]) holding only its read lock, from its keepalive
// timer, and once from the reader at its end holding nothing; never while
// holding the lock that guards its send queue, so a handler may enqueue,
// close or fail the link. A handler method that blocks holds up reading.
type Handler interface {
	// Deliver takes data message m, numbered seq. It may block (receive
	// buffer full, an earlier message still due from another link) until
	// [Link.Dead] is closed. It reports false if the link should stop
	// reading. m belongs to the owner.
	Deliver(seq uint64, m []byte) bool

	// Base checks a base message (the numbering of a link that takes over
	// from another); an error is a protocol error that ends the link.
	Base(seq uint64) error

	// Acked takes the peer's ack of n messages; an error ends the link.
	Acked(n uint64) error

	// StreamRequest is the listener asking us (the dialer) to open a
	// stream; it must not block the reader.
	StreamRequest(q *wire.StreamRequest)

	// StreamRefused is the dialer's answer that our request failed.
	StreamRefused(r *wire.StreamRefused)

	// KeepaliveChanged reports that the link's keepalive pings went
	// unanswered (inviable, with why) or that frames arrive again.
	KeepaliveChanged(inviable bool, err error)

	// Ended reports that the link is gone: err is why (ErrGracefulEnd
	// after a clean close handshake), peerClosed whether the peer's close
	// frame arrived, with its code and reason. It is called once, last.
	Ended(err error, peerClosed bool, code int, reason string)

	// The direct read (ReadDirect) asks these.

	// TakeDirect accounts for message m, numbered seq, that a receiver
	// read itself. It must not block.
	TakeDirect(seq uint64, m []byte) DirectResult

	// BusyElsewhere reports whether a direct reader should stop: another
	// link takes part, or a message waits in the owner's queue.
	BusyElsewhere() bool

	// OthersWaiting reports whether another receiver waits for the
	// owner's queue (so reading should not stay with one that leaves).
	OthersWaiting() bool

	// ReadWait returns ready if the owner's queue has a message (or its
	// end) for the receiver, or else a channel closed when it has.
	ReadWait() (wait <-chan struct{}, ready bool)
}

// DirectResult is what the owner did with a message read directly.
type DirectResult int

const (
	DirectMine      DirectResult = iota // the next message: the reader takes it
	DirectDuplicate                     // already delivered through another link
	DirectQueued                        // queued behind messages already waiting
	DirectLater                         // an earlier message is still due
)

var (
	// ErrRetired is EnqueueData's answer on a link that takes no more data.
	ErrRetired = errors.New("nearnet: link retired")
	// ErrGracefulEnd ends a link after a clean close handshake.
	ErrGracefulEnd = errors.New("nearnet: link closed")
	// ErrNotRead means ReadDirect read nothing for the caller: the owner's
	// queue may have a message now, or the link ended; look again.
	ErrNotRead = errors.New("nearnet: nothing read")

	// errPeerClosed reports that the peer's close frame arrived (and ours
	// is queued): reading is over, cleanly.
	errPeerClosed = errors.New("nearnet: peer closed the link")
)

// A Link is the link protocol on one transport connection. It is safe for
// concurrent use: senders enqueue from any goroutine, one goroutine at a
// time reads. Its life: New, the handshake (SendUpgrade and ReadHello, or
// AcceptUpgrade, ReadHello and SendHello), Start with its Handler, then
// frames both ways until CloseWith's close handshake or Fail; the
// Handler's Ended is the last thing it does.
//
// Each started link runs two goroutines: writeLoop drains the send queue,
// batching whatever accumulated while the previous write was in the kernel
// into one Write (so one TLS record carries many messages under load and a
// lone message leaves at once), and readLoop decodes frames and hands data
// messages to the Handler in sequence order.
type Link struct {
	cfg      Config
	h        Handler                // set by Start
	t        transport.Conn         // the connection the link runs on
	wc       transport.WriteThrough // under nc (writethrough.go); nil where the transport has none
	nc       net.Conn               // t.Control(): the byte stream the frames travel on
	br       *bufio.Reader
	rd       *wire.Reader
	lim      *handshakeLimit
	outgoing bool
	key      string // Sec-WebSocket-Key: names the link on both sides; set in the handshake

	// Keepalive (keepalive.go).
	rframes    atomic.Uint64 // frames read, for the keepalive timer
	ka         *time.Timer
	kaFrames   uint64 // rframes at the last tick; timer only
	kaSilent   time.Time
	kaPings    int
	kaInviable bool // keepalives unanswered; timer only

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
	err         error        // why the link failed, if it did
	closeTimer  *time.Timer  // bounds the wait for the peer's close frame
	writing     bool         // the writer goroutine or a write-through is writing to nc
	lastWrite   time.Time    // when the last write to nc ended (writethrough.go)
	sm          budget.Meter // data frames in buf and being written (budget.go)
	bufCharge   int          // what sm counts for buf: its frames, or the spare's capacity it was
	spareCharge int          // what sm counts for spare: its capacity, with a budget
	toldYield   int          // what sm's account was told DropSpare would give back
	ended       bool         // sm is closed

	// Reading (read.go): one goroutine at a time holds rmu and reads frames,
	// either the link's background reader or a ReadDirect caller.
	rmu      sync.Mutex
	bgActive bool          // the background reader should read; guarded by mu
	kicked   bool          // a read deadline was set to interrupt a read; guarded by mu
	bgWake   chan struct{} // cap 1: bgActive may have changed
	yielded  chan struct{} // cap 1: the background reader let go of rmu
	end      error         // a direct reader hit the end of the link; guarded by mu
	resume   *time.Timer   // hands reading back to the background after a caller
	stash    []byte        // a message a caller read out of turn; guarded by rmu
	stashSeq uint64
	rm       budget.Meter    // data read and not yet handed to the Handler; guarded by rmu (budget.go)
	roomWait <-chan struct{} // the budget's release, while the reader waits for room; guarded by rmu
	noRoom   atomic.Bool     // the reader waits for room: silence is ours, not the peer's
	stalled  func(bool)      // told when the reader begins and ends waiting for room (SetAccounts)

	wake       chan struct{} // cap 1: the writer has work
	dead       chan struct{} // closed when the link fails or is aborted
	writerDone chan struct{}
	recvSeq    uint64 // sequence number of the next data message; reader only
	gotBase    bool   // a base message arrived on this link; reader only
}

const readBufferSize = 64 << 10

// New makes a link over t; wc, if not nil, is the connection under t's
// control stream that write-through uses. outgoing is the dialer's side,
// which masks its frames.
func New(t transport.Conn, wc transport.WriteThrough, outgoing bool, cfg *Config) *Link {
	nc := t.Control()
	l := &Link{
		cfg:        *cfg,
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
	if l.cfg.Logger == nil {
		l.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l.br = bufio.NewReaderSize(l.lim, readBufferSize)
	l.rd = wire.NewReader(l.br, !outgoing, l.cfg.MaxMessageSize+1) // +1: the kind byte
	if outgoing {
		var seed [32]byte
		crand.Read(seed[:])
		l.rng = rand.NewChaCha8(seed)
	}
	return l
}

// Outgoing reports whether this side dialed the link.
func (l *Link) Outgoing() bool { return l.outgoing }

// Key returns the link's Sec-WebSocket-Key, which names it on both sides
// (empty before the upgrade).
func (l *Link) Key() string { return l.key }

// Dead returns a channel closed when the link fails or is aborted.
func (l *Link) Dead() <-chan struct{} { return l.dead }

// Sent returns how many data messages were queued on the link.
func (l *Link) Sent() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// PeerClose reports whether the peer's close frame has arrived, and its
// code. It is set before the echo is queued, so once the peer has the
// echo (its Close returned) this side knows, though the link may not have
// ended yet.
func (l *Link) PeerClose() (code int, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peerCode, l.peerClosed
}

// SetDeadline sets the control stream's deadline, for the handshake.
func (l *Link) SetDeadline(t time.Time) { l.nc.SetDeadline(t) }

// appendFrameLocked appends one complete frame (masked when we are the
// client) carrying kind+body, or body alone when kind is 0.
func (l *Link) appendFrameLocked(dst []byte, op wire.Opcode, kind wire.Kind, body []byte) []byte {
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

func (l *Link) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// EnqueueData queues one application message. It returns ErrRetired if the
// link takes no more data, or a channel to wait on if the queue is full
// (Config.SendBuffer), with ErrNoBudget if the node's memory budget
// refused the message.
func (l *Link) EnqueueData(p []byte) (wait <-chan struct{}, err error) {
	l.mu.Lock()
	if l.closeQueued || l.err != nil {
		l.mu.Unlock()
		return nil, ErrRetired
	}
	if len(l.buf) > 0 && len(l.buf)+len(p)+wire.MaxHeaderLen+1 > l.cfg.SendBuffer {
		if l.room == nil {
			l.room = make(chan struct{})
		}
		ch := l.room
		l.mu.Unlock()
		return ch, nil
	}
	if ch := l.ensureSendLocked(len(p) + wire.MaxHeaderLen + 1); ch != nil {
		l.mu.Unlock()
		return ch, ErrNoBudget
	}
	l.buf = l.appendFrameLocked(l.buf, wire.OpBinary, wire.KindData, p)
	l.chargeLocked()
	l.sent++
	if l.writeThroughLocked() {
		l.mu.Unlock()
		return nil, nil
	}
	l.mu.Unlock()
	l.signal()
	return nil, nil
}

// EnqueueResend queues a logged message again on a resumed link,
// regardless of the send buffer limit (the log is bounded).
func (l *Link) EnqueueResend(m []byte) {
	l.mu.Lock()
	l.buf = l.appendFrameLocked(l.buf, wire.OpBinary, wire.KindData, m)
	l.chargeLocked() // forced: the bytes are in the log already
	l.sent++
	l.mu.Unlock()
	l.signal()
}

// Enqueue queues a message or control frame regardless of the send buffer
// limit (they are small and few). It reports false if the link is closing.
func (l *Link) Enqueue(op wire.Opcode, kind wire.Kind, body []byte) bool {
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

// CloseWith queues a close frame behind whatever is queued: everything
// already queued is still sent. It returns how many data messages the link
// carried, so a successor can continue the numbering.
func (l *Link) CloseWith(code int, reason string) uint64 {
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

// Fail ends the link at once: the transport is ended without a TLS
// close_notify (which could block on a peer that does not read).
func (l *Link) Fail(err error) {
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
	case errors.Is(err, ErrGracefulEnd):
		return wire.CloseNormal, ""
	case errors.Is(err, wire.ErrMessageTooLarge):
		return wire.CloseMessageTooBig, "message larger than the maximum"
	}
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		return wire.CloseProtocolError, pe.What
	}
	return wire.CloseAbnormal, "connection aborted"
}

// Start lifts the handshake's bounds and starts the writer, the reader and
// the keepalive; from now on the link reports to h.
func (l *Link) Start(h Handler) {
	l.h = h
	l.lim.n = -1
	l.bgActive = true
	l.ka = time.AfterFunc(time.Hour, l.keepaliveTick)
	l.ka.Reset(l.cfg.KeepAliveInterval)
	l.resume = time.AfterFunc(time.Hour, l.resumeBackground)
	l.resume.Stop()
	go l.writeLoop()
	go l.readLoop()
}

func (l *Link) writeLoop() {
	defer close(l.writerDone)
	limit := l.cfg.SendBuffer
	for {
		select {
		case <-l.wake:
		case <-l.dead:
			return
		}
		l.mu.Lock()
		if l.writing {
			// A sender is writing through (writethrough.go); it signals
			// again if anything is left for us.
			l.mu.Unlock()
			continue
		}
		b, charge := l.takeBufLocked()
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
		l.wroteLocked(b, charge, err == nil && !last && cap(b) <= 2*limit+readBufferSize)
		l.mu.Unlock()
		if err != nil {
			l.Fail(err)
			return
		}
		if last {
			// Our close frame is out; give the peer CloseTimeout to answer.
			l.mu.Lock()
			if !l.peerClosed && l.err == nil {
				l.closeTimer = time.AfterFunc(l.cfg.CloseTimeout, func() {
					l.Fail(errors.New("nearnet: peer did not answer the close within CloseTimeout"))
				})
			}
			l.mu.Unlock()
			return
		}
	}
}

// finish ends the link after reading stopped: cleanly after the peer's
// close frame (errPeerClosed), or at once after an error; then tells the
// Handler. It runs on the link's reader goroutine.
func (l *Link) finish(err error) {
	if err == errPeerClosed {
		// The peer's close arrived and ours is queued or sent: let the
		// writer finish, bounded by CloseTimeout, then end cleanly.
		err = nil
		t := time.NewTimer(l.cfg.CloseTimeout)
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
			err = ErrGracefulEnd
		}
	} else {
		var pe *wire.ProtocolError
		switch {
		case errors.As(err, &pe):
			l.cfg.Logger.Debug("nearnet: protocol error from the peer", "err", pe.What)
			l.CloseWith(wire.CloseProtocolError, pe.What)
			l.flushBriefly()
			l.t.Drain(lingerTime)
		case errors.Is(err, wire.ErrMessageTooLarge):
			l.CloseWith(wire.CloseMessageTooBig, "message larger than the maximum")
			l.flushBriefly()
			l.t.Drain(lingerTime)
		}
	}
	l.Fail(err)
	<-l.writerDone
	l.resume.Stop()
	l.rmu.Lock()
	l.rm.Close()
	l.rmu.Unlock()
	l.mu.Lock()
	l.sm.Account().AddYieldable(-int64(l.toldYield))
	l.ended, l.toldYield = true, 0
	l.sm.Close()
	if l.closeTimer != nil {
		l.closeTimer.Stop()
	}
	code, reason, peerClosed := l.peerCode, l.peerReason, l.peerClosed
	var pe *wire.ProtocolError
	if bad := errors.As(l.err, &pe); l.err != nil && (errors.Is(err, net.ErrClosed) || bad) {
		err = l.err // the first failure (a write, bad input seen elsewhere) ended reading
	}
	l.mu.Unlock()
	l.h.Ended(err, peerClosed, code, reason)
}

// FailProtocol ends the link for bad input found outside its reader (by
// the owner): a close frame saying why (1002), then the end.
func (l *Link) FailProtocol(pe *wire.ProtocolError) {
	l.CloseWith(wire.CloseProtocolError, pe.What)
	l.flushBriefly()
	l.Fail(pe)
}

// flushBriefly gives the writer a moment to send a queued close frame
// before the link is torn down after a protocol error.
func (l *Link) flushBriefly() {
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

// readOne reads frames until a data message, which it returns with its
// sequence number; it answers pings and hands acks, base messages and
// stream requests to the Handler on the way. It returns errPeerClosed
// after the peer's close frame, a timeout error when a deadline
// interrupted it (it can be called again), or another error when the link
// is broken. The caller holds l.rmu.
func (l *Link) readOne() ([]byte, uint64, error) {
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
			if wire.Kind(p[0]) != wire.KindData {
				l.rm.Sub(len(p)) // taken when its header was read (budget.go)
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
				if err := l.h.Base(seq); err != nil {
					return nil, 0, err
				}
				l.recvSeq, l.gotBase = seq, true
			case wire.KindAck:
				n, err := wire.ParseAck(p[1:])
				if err != nil {
					return nil, 0, err
				}
				if err := l.h.Acked(n); err != nil {
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
				l.h.StreamRequest(q)
			case wire.KindStreamRefused:
				r, err := wire.ParseStreamRefused(p[1:])
				if err != nil {
					return nil, 0, &wire.ProtocolError{What: "stream refusal: " + err.Error()}
				}
				l.h.StreamRefused(r)
			case wire.KindHello:
				return nil, 0, &wire.ProtocolError{What: "second hello"}
			default:
				if p[0] < 0x80 {
					return nil, 0, &wire.ProtocolError{What: "unknown message kind"}
				}
				if x, ok := l.h.(ExtensionHandler); ok {
					x.Extension(wire.Kind(p[0]), append([]byte(nil), p[1:]...))
				}
			}
		case wire.OpText:
			return nil, 0, &wire.ProtocolError{What: "text message; nearnet sends binary messages only"}
		case wire.OpPing:
			l.Enqueue(wire.OpPong, 0, p)
		case wire.OpPong:
		case wire.OpClose:
			code, reason, _ := wire.ParseClose(p) // checked by the Reader
			l.mu.Lock()
			l.peerClosed, l.peerCode, l.peerReason = true, code, reason
			l.mu.Unlock()
			l.CloseWith(code, "") // echo the code (an empty close answers an empty one)
			return nil, 0, errPeerClosed
		}
	}
}
