package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"unicode/utf8"
)

// Opcode is a WebSocket frame opcode (RFC 6455 §5.2).
type Opcode byte

// WebSocket opcodes.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

func (op Opcode) isControl() bool { return op&0x8 != 0 }

// MaxHeaderLen is the longest frame header: 2 bytes, 8 of extended length
// and a 4-byte masking key.
const MaxHeaderLen = 14

// MaxControlPayload is the largest payload of a control frame (§5.5).
const MaxControlPayload = 125

// HeaderLen returns the header length of a frame with an n-byte payload.
func HeaderLen(n int, masked bool) int {
	h := 2
	switch {
	case n > 0xFFFF:
		h += 8
	case n > 125:
		h += 2
	}
	if masked {
		h += 4
	}
	return h
}

// AppendHeader appends the header of a frame with an n-byte payload. A
// non-nil key makes it a masked (client-to-server) frame; the caller masks
// the payload with [Mask].
func AppendHeader(dst []byte, fin bool, op Opcode, n int, key *[4]byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	var b1 byte
	if key != nil {
		b1 = 0x80
	}
	switch {
	case n > 0xFFFF:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	case n > 125:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, b1|byte(n))
	}
	if key != nil {
		dst = append(dst, key[:]...)
	}
	return dst
}

// Mask XORs b in place with the masking key, starting at byte pos of the key
// stream (§5.3), and returns the position after b. Masking twice unmasks.
func Mask(key [4]byte, pos int, b []byte) int {
	// Rotate the key so that b[0] lines up with key[0], then work a word at a time.
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+32 <= len(b); i += 32 {
		s := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(s[0:], binary.LittleEndian.Uint64(s[0:])^k64)
		binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^k64)
	}
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= k[i&3]
	}
	return (pos + len(b)) & 3
}

// Reader reads WebSocket messages from a buffered stream. It reassembles
// fragmented messages, returns control frames as they arrive (also between
// fragments, as §5.4 allows), and enforces every rule of §5 that concerns a
// receiver. A Reader is not safe for concurrent use.
//
// A read that fails with a timeout (a deadline set to interrupt it) can be
// retried: the Reader keeps the frame it was in the middle of.
type Reader struct {
	br     *bufio.Reader
	server bool // frames must be masked (we are the server)
	max    int  // largest message payload accepted

	// A fragmented message in progress.
	frag   []byte
	fragOp Opcode
	inFrag bool

	// The frame in progress: header read, payload read up to off.
	inFrame bool
	cur     header
	buf     []byte // where the payload goes
	off     int

	reserve  func(n int, kind byte) bool // SetReserve; nil: none
	held     bool                        // hdr was read, but its payload not set up (reserve refused, or peeking failed)
	hdr      header
	fragKind byte // the first payload byte of the fragmented message in progress
}

// ErrNoRoom means the function set with [Reader.SetReserve] refused a
// data frame's payload. Nothing of the payload was read or allocated
// (the transport's flow control pushes back on the peer); Next may be
// called again, and asks again.
var ErrNoRoom = errors.New("nearnet: no room for the message in the memory budget")

// SetReserve makes the Reader ask reserve for room for each data frame's
// payload (n > 0 bytes) after reading its header and before allocating
// it, so a data message's whole payload was granted when Next returns it.
// kind is the message's first payload byte (nearnet's message kind),
// peeked at before the payload is read. Control frames (at most 125
// bytes) are not asked for.
func (r *Reader) SetReserve(reserve func(n int, kind byte) bool) { r.reserve = reserve }

// NewReader returns a Reader. server says which side we are: a server
// requires masked frames, a client refuses them. max bounds a message's
// payload; a larger one fails with [ErrMessageTooLarge].
func NewReader(br *bufio.Reader, server bool, max int) *Reader {
	return &Reader{br: br, server: server, max: max}
}

type header struct {
	fin    bool
	op     Opcode
	masked bool
	key    [4]byte
	n      int
}

func (r *Reader) readHeader() (header, error) {
	var h header
	b, err := r.br.Peek(2)
	if err != nil {
		return h, err
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return h, protoErr("reserved bits set without a negotiated extension")
	}
	h.fin = b0&0x80 != 0
	h.op = Opcode(b0 & 0x0F)
	h.masked = b1&0x80 != 0
	n7 := int(b1 & 0x7F)
	hl := 2
	switch n7 {
	case 126:
		hl += 2
	case 127:
		hl += 8
	}
	if h.masked {
		hl += 4
	}
	b, err = r.br.Peek(hl)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	off := 2
	switch n7 {
	case 126:
		v := binary.BigEndian.Uint16(b[2:])
		if v < 126 {
			return h, protoErr("payload length not minimally encoded")
		}
		h.n = int(v)
		off = 4
	case 127:
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, protoErr("payload length has its most significant bit set")
		}
		if v <= 0xFFFF {
			return h, protoErr("payload length not minimally encoded")
		}
		if v > uint64(r.max)+1 || v > 1<<40 {
			h.n = -1 // too large; reported by the caller, which knows the context
		} else {
			h.n = int(v)
		}
		off = 10
	default:
		h.n = n7
	}
	if h.masked {
		copy(h.key[:], b[off:off+4])
	}
	if _, err := r.br.Discard(hl); err != nil {
		return h, err
	}
	switch h.op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return h, protoErr("unknown opcode %#x", byte(h.op))
	}
	if h.masked != r.server {
		if r.server {
			return h, protoErr("client frame not masked")
		}
		return h, protoErr("server frame masked")
	}
	if h.op.isControl() {
		if !h.fin {
			return h, protoErr("fragmented control frame")
		}
		if h.n < 0 || h.n > MaxControlPayload {
			return h, protoErr("control frame payload over 125 bytes")
		}
	}
	return h, nil
}

// Next returns the next message or control frame. For data messages op is
// OpText or OpBinary and payload is the whole reassembled message, newly
// allocated and owned by the caller. Control frames (OpClose, OpPing,
// OpPong) are returned as they arrive; answering them is the caller's job.
// Errors are I/O errors, [*ProtocolError] or [ErrMessageTooLarge]; after
// one of the last two, or an I/O error other than a timeout, the stream is
// out of sync and must be closed.
func (r *Reader) Next() (op Opcode, payload []byte, err error) {
	for {
		if !r.inFrame {
			if err := r.startFrame(); err != nil {
				return 0, nil, err
			}
		}
		for r.off < len(r.buf) {
			n, err := r.br.Read(r.buf[r.off:])
			r.off += n
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, nil, err
			}
		}
		h, p := r.cur, r.buf
		r.inFrame, r.buf = false, nil
		if h.masked {
			Mask(h.key, 0, p)
		}
		switch {
		case h.op.isControl():
			if h.op == OpClose {
				if _, _, err := ParseClose(p); err != nil {
					return 0, nil, err
				}
			}
			return h.op, p, nil
		case !r.inFrag:
			return h.op, p, nil // a whole message in one frame
		case h.fin:
			p, op := r.frag, r.fragOp
			r.inFrag, r.frag = false, nil
			return op, p, nil
		}
		// A fragment that is not the last: go on with the next frame.
	}
}

// startFrame reads a frame header and sets up where its payload goes.
func (r *Reader) startFrame() error {
	var h header
	if r.held {
		h = r.hdr
	} else {
		var err error
		if h, err = r.readHeader(); err != nil {
			return err
		}
	}
	if h.op.isControl() {
		r.cur, r.buf, r.off, r.inFrame = h, make([]byte, h.n), 0, true
		return nil
	}
	if h.op == OpContinuation {
		if !r.inFrag {
			return protoErr("continuation frame without a message to continue")
		}
	} else if r.inFrag {
		return protoErr("new data frame inside a fragmented message")
	}
	have := len(r.frag)
	if h.n < 0 || h.n > r.max-have {
		return ErrMessageTooLarge
	}
	if r.reserve != nil && h.n > 0 {
		kind := r.fragKind
		if !r.inFrag {
			b, err := r.br.Peek(1)
			if err != nil {
				r.held, r.hdr = true, h
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			kind = b[0]
			if h.masked {
				kind ^= h.key[0]
			}
			r.fragKind = kind
		}
		if !r.reserve(h.n, kind) {
			r.held, r.hdr = true, h
			return ErrNoRoom
		}
	}
	r.held = false
	if h.fin && !r.inFrag {
		r.cur, r.buf, r.off, r.inFrame = h, make([]byte, h.n), 0, true
		return nil
	}
	if !r.inFrag {
		r.inFrag, r.fragOp, r.frag = true, h.op, nil
	}
	r.frag = append(r.frag, make([]byte, h.n)...)
	r.cur, r.buf, r.off, r.inFrame = h, r.frag[have:], 0, true
	return nil
}

// Close status codes (RFC 6455 §7.4.1) and nearnet's own (PROTOCOL.md).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005 // never sent; reported when a close frame had no code
	CloseAbnormal        = 1006 // never sent; the connection dropped without a close frame
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011

	CloseRejected    = 4001 // the listener's admission hook refused the peer
	CloseKeyMismatch = 4002 // the pre-shared key proof failed
	CloseUntrusted   = 4003 // the peer's identity is not trusted
	CloseDuplicate   = 4004 // a duplicate connection between the same two peers is being dropped
	CloseBadHello    = 4005 // the hello was missing, malformed or of an unsupported version
	CloseResume      = 4006 // this transport connection ends; the session resumes on a new one
	CloseSessionLost = 4008 // a resume needs messages the closing side no longer holds (PROTOCOL.md section 11)
)

// AppendClose appends the payload of a close frame. The reason is cut to fit
// a control frame at a UTF-8 boundary.
func AppendClose(dst []byte, code int, reason string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	if len(reason) > MaxControlPayload-2 {
		reason = reason[:MaxControlPayload-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return append(dst, reason...)
}

// ParseClose decodes a close frame's payload. An empty payload gives
// CloseNoStatus.
func ParseClose(p []byte) (code int, reason string, err error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, "", nil
	case len(p) == 1:
		return 0, "", protoErr("close frame with a 1-byte payload")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", protoErr("invalid close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", protoErr("close reason is not UTF-8")
	}
	return code, string(p[2:]), nil
}

func validCloseCode(c int) bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1011:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}
