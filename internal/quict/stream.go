package quict

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// Stream is one bidirectional QUIC stream as a [net.Conn]: a reliable,
// ordered byte stream with its own flow control, so a reader that falls
// behind blocks its writer ([Config.MaxStreamReceiveWindow] bounds what is
// buffered) without slowing the connection's other streams.
//
// Read, Write and the deadline methods behave as on a TCP connection;
// deadline errors are net.Errors whose Timeout is true. [Stream.CloseWrite]
// ends the write direction (a FIN: the peer's Read returns io.EOF after the
// data). [Stream.Close] ends both directions. A Stream is safe for
// concurrent use by multiple goroutines.
type Stream struct {
	qs   *quic.Stream
	conn *Conn

	// wmu serialises Write against CloseWrite and Close: quic-go's Close
	// (the FIN) must not run concurrently with a Write.
	wmu       sync.Mutex
	truncated bool // guarded by wmu: Close cut a Write short
	closed    atomic.Bool
	// dmu makes Close's write deadline stick: no SetWriteDeadline may
	// replace it once closed is set.
	dmu sync.Mutex
}

var _ net.Conn = (*Stream)(nil)

func newStream(qs *quic.Stream, c *Conn) *Stream { return &Stream{qs: qs, conn: c} }

// Read reads data the peer wrote. It returns io.EOF once the peer closed
// its write direction and everything was read; a [*StreamError] if the
// peer reset the stream; a [*CloseError] (or another connection error) if
// the connection closed.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.qs.Read(p)
	if err != nil {
		err = s.err("read", err)
	}
	return n, err
}

// Write writes p, blocking while the peer's receive window is full. It
// returns a [*StreamError] if the peer stopped reading the stream.
func (s *Stream) Write(p []byte) (int, error) {
	if s.closed.Load() {
		return 0, s.opError("write", net.ErrClosed)
	}
	s.wmu.Lock()
	n, err := s.qs.Write(p)
	if err != nil && s.closed.Load() {
		s.truncated = true
	}
	s.wmu.Unlock()
	if err != nil {
		err = s.err("write", err)
	}
	return n, err
}

// CloseWrite ends the write direction: the peer reads what was written and
// then io.EOF. Reading goes on.
func (s *Stream) CloseWrite() error {
	if s.closed.Load() {
		return s.opError("close", net.ErrClosed)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.qs.Close(); err != nil {
		return s.err("close", err)
	}
	return nil
}

// Close ends both directions. What was written is still delivered (the
// write direction ends with a FIN, as [Stream.CloseWrite]; but a Write that
// Close interrupts resets the stream instead, so that the peer never takes
// a cut-short write for the whole); if the peer
// may still be writing, it is told to stop (STOP_SENDING with
// [StreamCodeClosed]), so its Write fails instead of blocking and both
// sides release the stream. Blocked Reads and Writes return
// net.ErrClosed. Close does not wait for the peer.
func (s *Stream) Close() error {
	s.dmu.Lock()
	wasClosed := s.closed.Swap(true)
	s.dmu.Unlock()
	if wasClosed {
		return nil
	}
	s.qs.CancelRead(StreamCodeClosed)
	// Interrupt a blocked Write so the FIN can follow it.
	s.qs.SetWriteDeadline(time.Now())
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.truncated {
		// A FIN now would make a cut-short write look complete.
		s.qs.CancelWrite(StreamCodeClosed)
		return nil
	}
	s.qs.Close() // fails only if the peer stopped the stream, which releases it too
	return nil
}

// Reset abandons the stream at once in both directions (RESET_STREAM and
// STOP_SENDING with code): bytes not yet delivered are dropped, and the
// peer's Read and Write fail with a [*StreamError]. It is the QUIC form of
// a TCP reset.
func (s *Stream) Reset(code uint64) {
	s.dmu.Lock()
	s.closed.Store(true)
	s.dmu.Unlock()
	s.qs.CancelRead(quic.StreamErrorCode(code))
	s.qs.CancelWrite(quic.StreamErrorCode(code))
}

// err maps an error from quic-go for operation op.
func (s *Stream) err(op string, err error) error {
	if s.closed.Load() {
		var se *quic.StreamError
		var ne net.Error
		if errors.As(err, &se) && !se.Remote || errors.As(err, &ne) && ne.Timeout() || errors.Is(err, quic.ErrStreamClosed) {
			return s.opError(op, net.ErrClosed)
		}
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return err // a deadline: nettest wants the net.Error itself
	}
	return mapErr(err)
}

func (s *Stream) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "quic", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// LocalAddr returns the connection's local address.
func (s *Stream) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// RemoteAddr returns the connection's remote address.
func (s *Stream) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// SetDeadline sets both the read and the write deadline.
func (s *Stream) SetDeadline(t time.Time) error {
	s.qs.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the time after which a Read fails with a timeout; a
// Read blocked at that time returns at once. The zero time means none.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.qs.SetReadDeadline(t) }

// SetWriteDeadline sets the time after which a Write fails with a timeout.
// The zero time means none.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if s.closed.Load() {
		return nil // Close set one to interrupt a Write; keep it
	}
	return s.qs.SetWriteDeadline(t)
}
