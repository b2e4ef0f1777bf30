// Package transport is the seam between a nearnet session and the paths it
// runs on. A path (TCP with TLS and WebSocket, QUIC, and later others) is a
// [Conn]: the control byte stream the link protocol runs on, the streams
// and the datagram flow of the same peer, the TLS state that authenticates
// it, and a way to end it. The session and the link protocol use nothing
// else of it, so they never ask which transport they have.
//
// Where each piece lives is in ARCHITECTURE.md.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/wire"
)

// Transport is one kind of path for a node: it dials, listens, and names
// itself in the node's advertisement. Its methods are safe for concurrent
// use.
type Transport interface {
	// Name is the transport's token in an advertisement's "tr" TXT entry
	// (PROTOCOL.md, "Discovery"): "ws" for TCP, "quic" for QUIC.
	Name() string

	// Service is the DNS-SD service type the transport is advertised
	// under, given the node's ("_app._tcp"): the same for TCP,
	// "_app._udp" for QUIC (RFC 6763, section 7).
	Service(base string) string

	// Dial opens a connection to addr ("host:port") and runs the
	// transport's own handshake, bounded by ctx. A failure is a
	// *StageError naming the step that failed.
	Dial(ctx context.Context, addr string) (Conn, error)

	// Listen opens a listener on addr and starts accepting: each
	// connection goes to a's methods on a goroutine of its own.
	Listen(ctx context.Context, addr string, a Acceptor) (Listener, error)

	// FallbackAfter bounds a dial that another transport could follow
	// (0: ctx alone bounds it). A QUIC dial to a port nobody listens on
	// hears nothing, where TCP is refused at once.
	FallbackAfter() time.Duration

	// Close closes the listener and what the transport holds for the
	// node (sockets), and waits for its goroutines.
	Close() error
}

// Listener is a transport's listener (see Transport.Listen). Its Close
// stops accepting; connections already accepted go on until the
// transport closes.
type Listener interface {
	Addr() net.Addr
	Close() error
}

// Acceptor takes what a listener accepts.
type Acceptor interface {
	// HandleConn takes a connection whose transport handshake is done.
	// The link's handshake must be done by deadline too: one bound for
	// every stage before the peer is authenticated.
	HandleConn(c Conn, deadline time.Time)

	// HandleFailure is told of a connection that failed its transport
	// handshake (err is a *StageError).
	HandleFailure(remote net.Addr, err error)
}

// StageError is a failed dial or transport handshake, with the step
// that failed ("tcp", "tls", "quic").
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

// Conn is one transport connection to a peer. It carries one link (the
// link protocol on Control), the streams opened beside it and its
// datagram flow. Its methods are safe for concurrent use.
type Conn interface {
	// Control is the byte stream the link protocol runs on, after the
	// transport's own handshake: reads, writes and deadlines. Its Close
	// ends the stream gracefully once the link's close frames have crossed
	// (TLS close_notify then FIN, or a QUIC stream FIN).
	Control() net.Conn

	// TLS is the state of the TLS session that authenticates the peer,
	// or nil when nothing does (no security over TCP).
	TLS() *tls.ConnectionState

	// LocalAddr is the local address of the connection; RemoteAddr names
	// the peer (the address dialed, for a connection through a proxy).
	LocalAddr() net.Addr
	RemoteAddr() net.Addr

	// Close closes the connection at once during the handshake, when
	// nothing was refused (the transport failed, or an HTTP error was
	// written): the peer sees the end after what was written.
	Close() error

	// End releases the connection once its link has ended. Code
	// wire.CloseNormal follows a clean close (streams on the connection
	// may go on); any other code ends everything at once, carrying the
	// code to the peer where the transport can (QUIC's CONNECTION_CLOSE)
	// and resetting it where it cannot (TCP).
	End(code int, reason string)

	// Refuse ends a connection whose handshake this side refused, after
	// the close frame saying why was written: the frame reaches the peer
	// before the end does.
	Refuse(code int, reason string)

	// Drain reads and discards what the peer still sends, until it closes
	// or d has passed. Closing with unread bytes makes some transports
	// reset the connection, and the peer could lose the close frame just
	// written.
	Drain(d time.Duration)

	// OfferDatagrams fills in this side's datagram offer in a hello.
	OfferDatagrams(h *wire.Hello)

	// Datagrams opens the datagram flow both hellos offered, or returns
	// nil when either side offered none.
	Datagrams(peer *wire.Hello) (Flow, error)

	// OpenStream opens a stream to the peer. It returns ErrPeerOpens
	// when streams of this connection can only be opened by the peer,
	// which is then asked over the link (a TCP link's listener cannot
	// reach its dialer).
	OpenStream(ctx context.Context) (Stream, error)

	// AcceptStream returns the next stream the peer opened on this
	// connection. It returns ErrNoStreams at once where streams arrive
	// through the listener instead (TCP).
	AcceptStream(ctx context.Context) (Stream, error)

	// AsStream turns an accepted connection whose first bytes were the
	// stream magic (PROTOCOL.md, "Streams") into the stream it carries;
	// false where streams never arrive that way.
	AsStream() (Stream, bool)
}

// Stream is a byte stream to the peer beside a Conn. Read, the deadlines
// and the addresses are a net.Conn's; Write writes directly and is used for
// the stream's handshake only: afterwards writes go through the Sink.
type Stream interface {
	net.Conn

	// TLS is the state of the stream's own TLS session, or nil when the
	// stream shares its Conn's (QUIC) or has none.
	TLS() *tls.ConnectionState

	// Sink returns the stream's write side for the application: writes
	// survive a write deadline, at most size bytes are held (or the
	// transport's own flow-control window), Close sends what is queued
	// for at most grace, and onEnd runs once the stream is released.
	Sink(size int, grace time.Duration, onEnd func()) Sink

	// Abort ends the stream at once; the peer sees it reset.
	Abort()
}

// Sink is a stream's write side (see Stream.Sink).
type Sink interface {
	Write(p []byte) (int, error)
	CloseWrite() error
	Close(abort bool)        // flush then close, or drop what is queued and reset
	SetDeadline(t time.Time) // the write deadline
	Done() <-chan struct{}   // closed once the stream is released
}

// Flow is a connection's best-effort datagram flow.
type Flow interface {
	Send(p []byte) error
	Receive(ctx context.Context) ([]byte, error)
	MaxSize() int
	Stats() dgram.Stats
	Done() <-chan struct{}
	Close() error
}

var (
	// ErrPeerOpens is returned by OpenStream where only the peer can open
	// streams of the connection.
	ErrPeerOpens = errors.New("transport: streams of this connection are opened by the peer")

	// ErrNoStreams is returned by AcceptStream where streams do not
	// arrive on the connection itself.
	ErrNoStreams = errors.New("transport: streams of this connection arrive through the listener")
)

// WriteThrough is offered by a Conn whose control stream a link may write
// from the sender's goroutine without ever blocking it: in non-blocking
// mode a write hands the kernel what fits and keeps the rest as overflow,
// which the link's writer goroutine sends first (Flush). A Conn offers it
// with a method WriteThrough() WriteThrough, which may return nil.
type WriteThrough interface {
	// SetNonblock switches the mode; it reports whether overflow waits.
	SetNonblock(on bool) (pending bool)
	HasOverflow() bool
	Flush() error // writes the overflow, blocking
}

// CloseError is a transport connection the peer closed with a nearnet
// close code (PROTOCOL.md section 7) where the transport carries one
// (QUIC's CONNECTION_CLOSE): the session treats it as a close frame with
// that code.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return "peer closed the connection (" + strconv.Itoa(e.Code) + " " + e.Reason + ")"
}

// Network is where a transport's sockets come from when not from the
// host's network stack: a userspace TCP/IP stack (tunnel.Stack). Addresses
// are numeric.
type Network interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	Listen(network, address string) (net.Listener, error)
	ListenPacket(network, address string) (net.PacketConn, error)
	// MTU is the largest IP packet on every path of the network.
	MTU() int
}
