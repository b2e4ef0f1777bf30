package nearnet

import (
	"sync/atomic"

	linkpkg "github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// A link is one transport connection to a peer as the session sees it: the
// link protocol (internal/link: framing, the writer, the readers, keepalive,
// the close handshake) and what the session keeps about it (the peer its
// hello named, resume offers, the datagram flow, the stream key). A Conn
// owns one link at a time for sending and reads from every link it holds;
// a second link appears in a simultaneous open and one of the two is
// retired (see Conn.addLink and PROTOCOL.md, "Duplicate connections").
//
// The link reports to its Conn through the methods below, which make link
// a linkpkg.Handler; they run on the link's reader or keepalive goroutine,
// or in a ReceiveMessage caller reading the link directly.
type link struct {
	*linkpkg.Link
	n      *Node
	t      transport.Conn // the connection the link runs on (streams, datagrams, addresses)
	dialed string         // the address dialed (outgoing links)
	peer   Peer
	c      *Conn        // set by Conn.addLink before the link starts
	flow   datagramFlow // the link's datagram flow, nil if either side has none
	hello  *wire.Hello  // the peer's hello, kept for the datagram offer

	streamKey [32]byte // proves stream connections (stream.go)
	handle    string   // names the link in stream opens

	// Resume (resume.go): the Conn this link was dialed to resume, the
	// resume offers of both hellos, and the peer's boot ID.
	resumeFor  *Conn
	myResume   *wire.Resume
	peerResume *wire.Resume
	peerBoot   string
	resumed    bool // the link resumed its Conn's session; set before it starts

	// Viability (viability.go).
	kaInviable atomic.Bool // keepalives unanswered (KeepaliveChanged)
	pathDown   atomic.Bool // the interface of the local address is down
}

// newLink makes a link over t; wc, if not nil, is the connection under
// t's control stream that write-through uses.
func newLink(n *Node, t transport.Conn, wc transport.WriteThrough, outgoing bool) *link {
	return &link{Link: linkpkg.New(t, wc, outgoing, &n.linkCfg), n: n, t: t}
}

// linkConfig is what the link protocol takes of cfg.
func linkConfig(cfg *Config) linkpkg.Config {
	return linkpkg.Config{
		MaxMessageSize:    cfg.MaxMessageSize,
		SendBuffer:        cfg.SendBuffer,
		CloseTimeout:      cfg.CloseTimeout,
		KeepAliveIdle:     cfg.KeepAliveIdle,
		KeepAliveInterval: cfg.KeepAliveInterval,
		KeepAliveCount:    cfg.KeepAliveCount,
		Logger:            cfg.Logger,
	}
}

// start hands l to its Conn (l.c, set) and starts it.
func (l *link) start() { l.Start(l) }

// SendBase queues a base message: the data messages that follow on l are
// numbered from n (session.Link).
func (l *link) SendBase(n uint64) { l.Enqueue(wire.OpBinary, 0, wire.AppendBase(nil, n)) }

func (l *link) Deliver(seq uint64, m []byte) bool { return l.c.deliver(l, seq, m) }
func (l *link) Base(seq uint64) error             { return l.c.checkBase(l, seq) }
func (l *link) Acked(n uint64) error              { return l.c.acked(n) }

func (l *link) StreamRequest(q *wire.StreamRequest) {
	c := l.c
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		c.answerStreamRequest(l, q)
	}()
}

func (l *link) StreamRefused(r *wire.StreamRefused) { l.c.streamRefused(r) }

// Extension takes the extension messages nearnet knows (ice.go).
func (l *link) Extension(k wire.Kind, body []byte) { l.n.iceMessage(l, k, body) }

func (l *link) KeepaliveChanged(inviable bool, err error) {
	l.kaInviable.Store(inviable)
	l.c.linkViability(l, err)
}

func (l *link) Ended(err error, peerClosed bool, code int, reason string) {
	l.c.linkEnded(l, fromTransport(err), peerClosed, code, reason)
}

func (l *link) TakeDirect(seq uint64, m []byte) linkpkg.DirectResult { return l.c.takeDirect(seq, m) }
func (l *link) BusyElsewhere() bool                                  { return l.c.busyElsewhere() }
func (l *link) OthersWaiting() bool                                  { return l.c.othersWaiting() }
func (l *link) ReadWait() (<-chan struct{}, bool)                    { return l.c.readWait() }
