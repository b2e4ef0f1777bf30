// Package stream is what a nearnet stream is under the root's Stream: a
// transport stream with its writer (the transport's Sink), the close and
// abort rules of a net.Conn, and an idle timeout; and the stream
// handshake (PROTOCOL.md, "Streams"): the keys a link derives for its
// streams, the proofs that tie a stream to its link, and the open and
// answer messages.
package stream

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
)

// aLongTimeAgo is a deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// Stream is a reliable, ordered, flow-controlled byte stream over a
// transport stream. It is safe for concurrent use as a net.Conn is.
type Stream struct {
	ID   uint64
	Name string
	Meta map[string]string
	Kind string

	st transport.Stream // reads, deadlines, addresses
	w  transport.Sink   // writes

	mu     sync.Mutex
	closed bool

	idle idle // SetIdleTimeout (idle.go)
}

// New wraps st; the Sink buffers up to buf bytes, flushes them for up to
// closeTimeout after Close, and calls onEnd when the stream has ended.
func New(id uint64, name string, meta map[string]string, kind string, st transport.Stream, buf int, closeTimeout time.Duration, onEnd func()) *Stream {
	s := &Stream{ID: id, Name: name, Meta: meta, Kind: kind, st: st}
	s.idle.start = time.Now()
	s.w = st.Sink(buf, closeTimeout, onEnd)
	return s
}

// Read reads bytes the peer wrote.
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

// Write queues p for the peer.
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

// CloseWrite half-closes the stream.
func (s *Stream) CloseWrite() error { return s.w.CloseWrite() }

// Close closes the stream: pending Reads and Writes return at once; bytes
// already written are still sent.
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

// Abort closes the stream at once, dropping bytes not yet sent.
func (s *Stream) Abort() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.st.Abort()
	s.w.Close(true)
}

// Done is closed when the writer has finished (after Close or Abort).
func (s *Stream) Done() <-chan struct{} { return s.w.Done() }

func (s *Stream) LocalAddr() net.Addr  { return s.st.LocalAddr() }
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

// SetWriteDeadline sets the deadline for pending and future Writes.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.w.SetDeadline(t)
	return nil
}

// idleErr returns the error a Read or Write of a stream ended by its idle
// timeout reports, or err.
func (s *Stream) idleErr(op string, err error) error {
	if err == nil || !s.idle.expired.Load() {
		return err
	}
	if errors.Is(err, ErrIdle) {
		return err
	}
	return &net.OpError{Op: op, Net: "nearnet", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: ErrIdle}
}
