package link

import (
	"bufio"
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

// The link's handshake (PROTOCOL.md sections 3 to 5): the dialer sends the
// WebSocket upgrade request with its hello pipelined behind it; the
// listener answers 101, reads the hello and answers with its own. What a
// hello says and whether it is acceptable is the owner's business; the
// link moves the bytes.

// handshakeLimit caps what the peer can make us buffer before the
// handshake is done (an endless HTTP header, say); Start lifts it.
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

// CloseFrameError is a close frame the peer sent in place of its hello.
type CloseFrameError struct {
	Code   int
	Reason string
}

func (e *CloseFrameError) Error() string {
	return "nearnet: the peer closed during the handshake: " + e.Reason
}

// Reader returns the link's buffered reader before the handshake: a
// connection whose first bytes turn out to be a stream's (see
// wire.StreamMagic) is read from it.
func (l *Link) Reader() *bufio.Reader { return l.br }

// SendUpgrade is the dialer's first flight: the upgrade request to addr
// with a new Sec-WebSocket-Key, and hello, if not nil, pipelined behind it
// in a masked frame.
func (l *Link) SendUpgrade(addr string, hello []byte) error {
	var nonce [16]byte
	rand.Read(nonce[:])
	l.key = wire.NewKey(nonce)
	buf := wire.AppendUpgradeRequest(nil, addr, l.key)
	if hello != nil {
		l.mu.Lock()
		buf = l.appendFrameLocked(buf, wire.OpBinary, 0, hello)
		l.mu.Unlock()
	} else {
		// Only to say why we leave: do not wait on a peer that does not read.
		l.nc.SetWriteDeadline(time.Now().Add(time.Second))
	}
	_, err := l.nc.Write(buf)
	return err
}

// ReadUpgradeResponse reads the listener's answer to SendUpgrade.
func (l *Link) ReadUpgradeResponse() error { return wire.ReadUpgradeResponse(l.br, l.key) }

// AcceptUpgrade is the listener's side of the upgrade: it reads the
// request (answering a malformed one with an HTTP error) and answers 101
// before any hello, since most WebSocket clients (Network framework's,
// Python's) send nothing until they have it.
func (l *Link) AcceptUpgrade() error {
	key, err := wire.ReadUpgradeRequest(l.br)
	if err != nil {
		var he *wire.HandshakeError
		if errors.As(err, &he) {
			l.nc.SetWriteDeadline(time.Now().Add(time.Second)) // past the handshake timeout for a 408
			l.nc.Write(wire.AppendErrorResponse(nil, he))
		}
		return err
	}
	l.key = key
	_, err = l.nc.Write(wire.AppendUpgradeResponse(nil, key))
	return err
}

// SendHello writes the listener's hello (after AcceptUpgrade and the
// dialer's hello).
func (l *Link) SendHello(hello []byte) error {
	l.mu.Lock()
	buf := l.appendFrameLocked(nil, wire.OpBinary, 0, hello) // not masked: we are the server
	l.mu.Unlock()
	_, err := l.nc.Write(buf)
	return err
}

// ReadHello reads the peer's first message, which must be a hello, or a
// close frame explaining why not (a *CloseFrameError).
func (l *Link) ReadHello() (*wire.Hello, error) {
	h, pair, err := l.ReadFirst()
	if err == nil && pair != nil {
		return nil, &wire.HelloError{What: "a pairing message where the hello belongs"}
	}
	return h, err
}

// ReadFirst reads the peer's first message: a hello, or a pairing message
// (PROTOCOL.md, section 16), returned whole with its kind byte, or a close
// frame explaining why neither (a *CloseFrameError).
func (l *Link) ReadFirst() (h *wire.Hello, pair []byte, err error) {
	for {
		op, p, err := l.rd.Next()
		if err != nil {
			return nil, nil, err
		}
		switch op {
		case wire.OpPing, wire.OpPong:
			continue
		case wire.OpClose:
			code, reason, _ := wire.ParseClose(p)
			return nil, nil, &CloseFrameError{Code: code, Reason: reason}
		case wire.OpBinary:
			if len(p) > 0 && (wire.Kind(p[0]) == wire.KindPair || wire.Kind(p[0]) == wire.KindPairConfirm) {
				return nil, append([]byte(nil), p...), nil
			}
			if len(p) == 0 || wire.Kind(p[0]) != wire.KindHello {
				return nil, nil, &wire.HelloError{What: "first message is not a hello"}
			}
			h, err := wire.ParseHello(p[1:])
			return h, nil, err
		default:
			return nil, nil, &wire.ProtocolError{What: "the hello came in a text frame; nearnet messages are binary (PROTOCOL.md section 5)"}
		}
	}
}

// SendHandshake writes messages (each with its kind byte) in one write
// during the handshake: the pairing messages, and the hello behind them.
func (l *Link) SendHandshake(msgs ...[]byte) error {
	var buf []byte
	l.mu.Lock()
	for _, m := range msgs {
		buf = l.appendFrameLocked(buf, wire.OpBinary, 0, m)
	}
	l.mu.Unlock()
	_, err := l.nc.Write(buf)
	return err
}

// SendCloseNow writes a close frame with code and reason during the
// handshake (before the writer goroutine exists), waiting at most a
// second.
func (l *Link) SendCloseNow(code int, reason string) {
	var p [wire.MaxControlPayload]byte
	l.mu.Lock()
	buf := l.appendFrameLocked(nil, wire.OpClose, 0, wire.AppendClose(p[:0], code, reason))
	l.mu.Unlock()
	l.nc.SetWriteDeadline(time.Now().Add(time.Second))
	l.nc.Write(buf)
}

// Drop closes the transport during the handshake, at once.
func (l *Link) Drop() { l.t.Close() }

// Refuse closes the transport during the handshake after a close frame
// with code (SendCloseNow), so that the frame reaches the peer first.
func (l *Link) Refuse(code int, reason string) { l.t.Refuse(code, reason) }
