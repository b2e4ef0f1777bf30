package nearnet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// TestHandshakeTimeoutIsAnswered: a dialer that stalls is told why before
// the listener drops it (PROTOCOL.md section 4): 408 while the upgrade
// request is incomplete, a close frame 4005 after the 101.
func TestHandshakeTimeoutIsAnswered(t *testing.T) {
	n := newNodeOn(t, TransportTCP, Config{Security: SecurityNone, HandshakeTimeout: 100 * time.Millisecond})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", n.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second)) // a hang, not a measurement
		return c, bufio.NewReader(c)
	}

	c, br := dial()
	io.WriteString(c, "GET "+wire.Path+" HTTP/1.1\r\n") // and no more
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled upgrade request: %v %v; want 408", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "handshake timeout") {
		t.Errorf("408 body %q; want it to name the handshake timeout", body)
	}

	c, br = dial()
	key := wire.NewKey([16]byte{1})
	c.Write(wire.AppendUpgradeRequest(nil, "x", key)) // and no hello
	if err := wire.ReadUpgradeResponse(br, key); err != nil {
		t.Fatal(err)
	}
	op, p, err := wire.NewReader(br, false, 1<<20).Next()
	if err != nil || op != wire.OpClose {
		t.Fatalf("stalled hello: opcode %v, %v; want a close frame", op, err)
	}
	code, reason, _ := wire.ParseClose(p)
	if code != wire.CloseBadHello || !strings.Contains(reason, "no hello within the handshake timeout") {
		t.Errorf("close %d %q; want 4005 naming the handshake timeout", code, reason)
	}
}

// TestDialerChecksAnsweredVersion: a listener that answers with a version
// the dialer did not offer is refused with 4005 (PROTOCOL.md section 6).
func TestDialerChecksAnsweredVersion(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second)) // a hang, not a measurement
		br := bufio.NewReader(c)
		key, err := wire.ReadUpgradeRequest(br)
		if err != nil {
			return
		}
		c.Write(wire.AppendUpgradeResponse(nil, key))
		rd := wire.NewReader(br, true, 1<<20)
		if _, _, err := rd.Next(); err != nil { // the dialer's hello
			return
		}
		h, _ := wire.AppendHello(nil, &wire.Hello{Version: 2, Peer: strings.Repeat("ab", 16)})
		c.Write(append(wire.AppendHeader(nil, true, wire.OpBinary, len(h), nil), h...))
		op, p, err := rd.Next()
		if err == nil && op == wire.OpClose {
			code, reason, _ := wire.ParseClose(p)
			closed <- fmt.Sprint(code, " ", reason)
		}
		close(closed)
	}()
	a := newNodeOn(t, TransportTCP, Config{Security: SecurityNone})
	_, err = a.Connect(ctxT(t), ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "answered version 2") {
		t.Fatalf("Connect to a listener answering version 2: %v; want a bad hello naming the version", err)
	}
	if got := <-closed; !strings.HasPrefix(got, "4005 ") {
		t.Errorf("the dialer closed with %q; want 4005", got)
	}
}

// TestRefusalsNameTheFault: a hello in a text frame is a protocol error
// (1002, PROTOCOL.md section 5), and a psk listener refuses a hello with
// no proof saying that none was sent, not that it proved another key.
func TestRefusalsNameTheFault(t *testing.T) {
	n := newNodeOn(t, TransportTCP, Config{Security: SecurityNone})
	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) // a hang, not a measurement
	br := bufio.NewReader(c)
	key := wire.NewKey([16]byte{2})
	hello, _ := wire.AppendHello(nil, &wire.Hello{Version: 1, Peer: strings.Repeat("cd", 16)})
	mask := [4]byte{1, 2, 3, 4}
	frame := wire.AppendHeader(nil, true, wire.OpText, len(hello), &mask)
	start := len(frame)
	frame = append(frame, hello...)
	wire.Mask(mask, 0, frame[start:])
	c.Write(append(wire.AppendUpgradeRequest(nil, "x", key), frame...))
	if err := wire.ReadUpgradeResponse(br, key); err != nil {
		t.Fatal(err)
	}
	op, p, err := wire.NewReader(br, false, 1<<20).Next()
	if code, reason, _ := wire.ParseClose(p); err != nil || op != wire.OpClose || code != wire.CloseProtocolError || !strings.Contains(reason, "text frame") {
		t.Errorf("hello in a text frame: %v %d %q %v; want close 1002 naming the text frame", op, code, reason, err)
	}

	rejected := make(chan error, 1)
	b := newNodeOn(t, TransportTCP, Config{OnReject: func(_ net.Addr, err error) {
		select {
		case rejected <- err:
		default:
		}
	}})
	a := newNodeOn(t, TransportTCP, Config{Trust: []security.Fingerprint{b.Fingerprint()}}) // pinned: sends no proof
	if _, err := a.Connect(ctxT(t), b.Addr().String()); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("a dialer without a key to a psk listener: %v; want a key mismatch", err)
	}
	if err := <-rejected; !errors.Is(err, security.ErrNoProof) {
		t.Errorf("the listener refused with %v; want ErrNoProof", err)
	}
}
