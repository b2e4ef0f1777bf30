package nearnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

// rawPeer is a hand-written dialer (no TLS) that has done the upgrade and
// sent its hello to b, whose Conn for it is returned.
type rawPeer struct {
	net.Conn
	mk [4]byte
}

func dialRaw(t *testing.T, b *Node, boot string) (*rawPeer, *Conn) {
	t.Helper()
	raw, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	p := &rawPeer{Conn: raw, mk: [4]byte{1, 2, 3, 4}}
	raw.Write(wire.AppendUpgradeRequest(nil, "x", wire.NewKey([16]byte{7})))
	hello, _ := wire.AppendHello(nil, &wire.Hello{Version: 1, Peer: NewPeerID().String(), Name: "raw", Boot: boot})
	p.send(hello)
	c, err := b.Accept(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// send writes one masked binary frame carrying body (kind byte included).
func (p *rawPeer) send(body []byte) {
	buf := wire.AppendHeader(nil, true, wire.OpBinary, len(body), &p.mk)
	start := len(buf)
	buf = append(buf, body...)
	wire.Mask(p.mk, 0, buf[start:])
	p.Write(buf)
}

// closeCode reads until the connection ends and returns the code and
// reason of the close frame b sent, if any.
func (p *rawPeer) closeCode(t *testing.T) (int, string) {
	t.Helper()
	p.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(p)
	// The close frame is the last server frame: 0x88, a length, 2 bytes of
	// code and the reason.
	i := bytes.LastIndexByte(got, 0x88)
	if i < 0 || i+4 > len(got) {
		t.Fatalf("no close frame in %q", got)
	}
	n := int(got[i+1])
	body := got[i+2 : min(i+2+n, len(got))]
	return int(binary.BigEndian.Uint16(body)), string(body[2:])
}

// A base message that does not continue the numbering is a protocol
// error (1002 with a reason), not a silent hold-back or discard.
func TestBadBaseIsAProtocolError(t *testing.T) {
	data := func(s string) []byte { return append([]byte{byte(wire.KindData)}, s...) }
	for _, tc := range []struct {
		name   string
		frames [][]byte
		reason string
	}{
		{"skips ahead", [][]byte{wire.AppendBase(nil, 5), data("held back")}, "skipped"},
		{"far ahead", [][]byte{wire.AppendBase(nil, 1_000_000)}, "skipped"},
		{"rewinds", [][]byte{data("a"), data("b"), wire.AppendBase(nil, 0)}, "after data"},
		{"twice", [][]byte{wire.AppendBase(nil, 0), wire.AppendBase(nil, 0)}, "another base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A gap is given the handshake timeout for another link to
			// fill it.
			b := newNode(t, Config{Security: SecurityNone, HandshakeTimeout: 300 * time.Millisecond})
			p, c := dialRaw(t, b, "")
			for _, f := range tc.frames {
				p.send(f)
			}
			code, reason := p.closeCode(t)
			if code != wire.CloseProtocolError || !strings.Contains(reason, tc.reason) {
				t.Fatalf("close %d %q; want 1002 with %q", code, reason, tc.reason)
			}
			<-c.Done()
			if s, _ := c.State(); s.Kind != StateFailed {
				t.Fatalf("state %v; want failed (the close is not clean)", s)
			}
		})
	}
}

// A stream refusal (and request) that is not JSON gets 1002 with a reason,
// as every other protocol error, not a bare reset.
func TestBadStreamMessagesAreProtocolErrors(t *testing.T) {
	b := newNode(t, Config{Security: SecurityNone})
	p, _ := dialRaw(t, b, "")
	p.send([]byte{0x05, '{', 'x'})
	if code, reason := p.closeCode(t); code != wire.CloseProtocolError || !strings.Contains(reason, "stream refusal") {
		t.Fatalf("close %d %q; want 1002 naming the stream refusal", code, reason)
	}
}

// A peer whose host closed the transport with a FIN (no close frame), after
// it had stopped answering pings, is given DropTime to come back, not the
// whole ResumeWindow (PROTOCOL.md section 11): a FIN is never the
// aftermath of a blip. (It used to wait ResumeWindow after a silence.)
func TestFinAfterSilenceWaitsDropTime(t *testing.T) {
	vb := newViabilityLog()
	b := newNode(t, Config{Security: SecurityNone, KeepAliveIdle: 50 * time.Millisecond, KeepAliveInterval: 20 * time.Millisecond,
		KeepAliveCount: 2, DropTime: 300 * time.Millisecond, ResumeWindow: time.Minute, DisablePathMonitor: true,
		OnViability: vb.record, ViabilityDebounce: time.Millisecond})
	p, c := dialRaw(t, b, "0123456789abcdef") // a boot: the session could resume
	go io.Copy(io.Discard, p)                 // reads everything, answers nothing
	vb.wait(t, Inviable)
	p.Conn.(*net.TCPConn).CloseWrite() // a FIN, as the peer's host sends when its process ends
	<-c.Done()
	s, _ := c.State()
	var sl *SessionLostError
	if !errors.As(s.Err, &sl) || !strings.Contains(sl.Error(), "within 300ms") {
		t.Fatalf("Conn: %v; want a SessionLostError after the 300ms DropTime", s)
	}
}

// A peer whose hello has no boot (a plain WebSocket client) cannot resume:
// its Conn ends when its transport does, without a resume wait.
func TestPeerWithoutBootIsNotWaitedFor(t *testing.T) {
	b := newNode(t, Config{Security: SecurityNone, ResumeWindow: time.Minute})
	p, c := dialRaw(t, b, "")
	p.Close()
	<-c.Done()
	s, _ := c.State()
	var sl *SessionLostError
	if errors.As(s.Err, &sl) {
		t.Fatalf("state %v: a peer that cannot resume was waited for", s)
	}
}
