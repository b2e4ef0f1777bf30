package session

import (
	"net"
	"sync/atomic"

	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// Peer is the remote side of a link as its hello and TLS handshake
// established it: the root's Peer, with the peer ID as bytes.
type Peer struct {
	ID          [16]byte
	Name        string
	Meta        map[string]string
	Fingerprint security.Fingerprint
	Addr        net.Addr
	Version     int
}

// A Path is one transport connection to a peer as the session sees it:
// the link protocol (internal/link: framing, the writer, the readers,
// keepalive, the close handshake) and what the session keeps about it (the
// peer its hello named, resume offers, the datagram flow, the stream key).
// A Session owns one Path at a time for sending and reads from every Path
// it holds; a second one appears in a simultaneous open and one of the two
// is retired (Session.Attach, PROTOCOL.md "Duplicate connections").
//
// The node's handshake fills the exported fields before the Path is
// attached; after that they are read only. The Path reports to its
// Session through its link.Handler methods, which run on the link's reader
// or keepalive goroutine, or in a ReceiveMessage caller reading it
// directly.
type Path struct {
	*link.Link
	T      transport.Conn // the connection the link runs on (streams, datagrams, addresses)
	Dialed string         // the address dialed (outgoing links)
	Peer   Peer
	Flow   transport.Flow // the datagram flow, nil if either side has none
	Hello  *wire.Hello    // the peer's hello, kept for the datagram offer

	StreamKey [32]byte // proves stream connections
	Handle    string   // names the link in stream opens

	// Resume: the Session this link was dialed to resume, the resume
	// offers of both hellos, and the peer's boot ID.
	ResumeFor  *Session
	MyResume   *wire.Resume
	PeerResume *wire.Resume
	PeerBoot   string

	// Pairing is the pairing by a short code this link's handshake runs
	// (Handshaker.Pair's own value); nil: none.
	Pairing any

	s          *Session    // set by Attach before the link starts
	resumed    bool        // the link resumed its session; set before it starts
	kaInviable atomic.Bool // keepalives unanswered (KeepaliveChanged)
	pathDown   atomic.Bool // the interface of the local address is down
}

// NewPath makes a Path over t; wc, if not nil, is the connection under t's
// control stream that write-through uses.
func NewPath(t transport.Conn, wc transport.WriteThrough, outgoing bool, cfg *link.Config) *Path {
	return &Path{Link: link.New(t, wc, outgoing, cfg), T: t}
}

// SendBase queues a base message: the data messages that follow on l are
// numbered from n (Link).
func (l *Path) SendBase(n uint64) { l.Enqueue(wire.OpBinary, 0, wire.AppendBase(nil, n)) }

// The link.Handler methods: the link reports to its Session.

func (l *Path) Deliver(seq uint64, m []byte) bool   { return l.s.deliver(l, seq, m) }
func (l *Path) Base(seq uint64) error               { return l.s.checkBase(l, seq) }
func (l *Path) Acked(n uint64) error                { return l.s.acked(n) }
func (l *Path) StreamRequest(q *wire.StreamRequest) { l.s.owner.StreamRequest(l, q) }
func (l *Path) StreamRefused(r *wire.StreamRefused) { l.s.owner.StreamRefused(r) }

// Extension hands a message of an extension kind to Config.Extension.
func (l *Path) Extension(k wire.Kind, body []byte) {
	if l.s != nil && l.s.cfg.Extension != nil {
		l.s.cfg.Extension(l, k, body)
	}
}

// Session is the session l is attached to (nil before Attach).
func (l *Path) Session() *Session { return l.s }

func (l *Path) KeepaliveChanged(inviable bool, err error) {
	l.kaInviable.Store(inviable)
	l.s.linkViability(l, err)
}

func (l *Path) Ended(err error, peerClosed bool, code int, reason string) {
	l.s.linkEnded(l, l.s.cfg.FromTransport(err), peerClosed, code, reason)
}

func (l *Path) TakeDirect(seq uint64, m []byte) link.DirectResult { return l.s.takeDirect(l, seq, m) }
func (l *Path) BusyElsewhere() bool                               { return l.s.busyElsewhere() }
func (l *Path) OthersWaiting() bool                               { return l.s.othersWaiting() }
func (l *Path) ReadWait() (<-chan struct{}, bool)                 { return l.s.readWait() }
