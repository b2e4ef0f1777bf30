package nearnet

import (
	"context"
	"errors"

	"github.com/nearnet/nearnet/internal/dgram"
)

// Best-effort datagrams, Multipeer's .unreliable mode. Each link negotiates
// a UDP flow in its hellos (PROTOCOL.md, "Datagrams"): both sides announce
// the port of their node's UDP socket and a session ID; keys come from the
// link's TLS exporter. One UDP socket per node and address family serves
// every flow (internal/dgram). A Conn sends on the flow of its current
// link; the flow of a link closes with the link.

var (
	// ErrDatagramTooLarge is wrapped by the error SendDatagram returns for
	// a payload over MaxDatagramSize; errors.As it to *DatagramTooLargeError
	// for the limit.
	ErrDatagramTooLarge = dgram.ErrTooLarge

	// ErrDatagramsUnavailable means the connection has no datagram flow:
	// this node or the peer turned datagrams off (or the peer's
	// implementation has none), or the flow expired (Config.DatagramIdleTimeout).
	ErrDatagramsUnavailable = errors.New("nearnet: datagrams unavailable on this connection")
)

// DatagramTooLargeError is returned by SendDatagram for a payload larger
// than the path takes without IP fragmentation, which nearnet never does.
// It matches [ErrDatagramTooLarge].
type DatagramTooLargeError struct {
	Size int // the payload's length
	Max  int // the largest payload the path takes now; see [Conn.MaxDatagramSize]
}

func (e *DatagramTooLargeError) Error() string {
	return (*dgram.TooLargeError)(e).Error()
}

// Is makes errors.Is(err, ErrDatagramTooLarge) hold.
func (e *DatagramTooLargeError) Is(target error) bool { return target == ErrDatagramTooLarge }

// DatagramStats counts a connection's datagrams.
type DatagramStats struct {
	Sent, SentBytes         uint64
	Received, ReceivedBytes uint64
	// Dropped counts datagrams not sent or not delivered, by reason:
	// "too_large", "send_buffer", "send_error" (sending); "auth", "replay",
	// "too_old", "truncated", "address", "queue_full" (receiving).
	Dropped map[string]uint64
}

// SendDatagram sends p as one best-effort datagram: it may be lost,
// duplicated by nothing but the network, or arrive out of order, and is
// never fragmented. Over TCP it never blocks: when the socket's buffer is
// full the datagram is dropped and counted. Over QUIC it is a DATAGRAM
// frame, and may wait briefly while QUIC's congestion control paces the
// queue (32 datagrams). A payload over MaxDatagramSize fails
// with an error wrapping [ErrDatagramTooLarge].
func (c *Conn) SendDatagram(p []byte) error { return exported(c.s.SendDatagram(p)) }

// ReceiveDatagram returns the next datagram, blocking until one arrives or
// ctx is done. After the connection ends it returns the connection's error
// (ErrClosed after Close).
func (c *Conn) ReceiveDatagram(ctx context.Context) ([]byte, error) { return c.s.ReceiveDatagram(ctx) }

// MaxDatagramSize returns the largest payload SendDatagram accepts now:
// the path MTU to the peer less the IP, UDP and nearnet headers (1439
// bytes on Ethernet with IPv4 and TLS). It is 0 when datagrams are
// unavailable.
func (c *Conn) MaxDatagramSize() int { return c.s.MaxDatagramSize() }

// DatagramStats returns the connection's datagram counters, over all the
// links it has had.
func (c *Conn) DatagramStats() DatagramStats {
	d := c.s.DatagramStats()
	return DatagramStats{Sent: d.Sent, SentBytes: d.SentBytes, Received: d.Received, ReceivedBytes: d.ReceivedBytes, Dropped: d.Dropped.ByReason()}
}
