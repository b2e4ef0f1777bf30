package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func frame(fin bool, op Opcode, payload []byte, key *[4]byte) []byte {
	b := AppendHeader(nil, fin, op, len(payload), key)
	start := len(b)
	b = append(b, payload...)
	if key != nil {
		Mask(*key, 0, b[start:])
	}
	return b
}

func reader(b []byte, server bool, max int) *Reader {
	return NewReader(bufio.NewReader(bytes.NewReader(b)), server, max)
}

func TestFrameRoundTrip(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for _, n := range []int{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 200000} {
		for _, masked := range []bool{false, true} {
			p := bytes.Repeat([]byte{0xA5, 0x5A, 7}, n/3+1)[:n]
			var k *[4]byte
			if masked {
				k = &key
			}
			b := frame(true, OpBinary, p, k)
			if got, want := len(b)-n, HeaderLen(n, masked); got != want {
				t.Fatalf("n=%d masked=%v: header %d bytes, HeaderLen says %d", n, masked, got, want)
			}
			op, got, err := reader(b, masked, 1<<20).Next()
			if err != nil || op != OpBinary || !bytes.Equal(got, p) {
				t.Fatalf("n=%d masked=%v: got op=%v len=%d err=%v", n, masked, op, len(got), err)
			}
		}
	}
}

func TestMaskMatchesBytewise(t *testing.T) {
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for pos := 0; pos < 4; pos++ {
		for n := 0; n < 80; n++ {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			want := append([]byte(nil), b...)
			for i := range want {
				want[i] ^= key[(pos+i)&3]
			}
			if end := Mask(key, pos, b); end != (pos+n)&3 || !bytes.Equal(b, want) {
				t.Fatalf("pos=%d n=%d: mask differs", pos, n)
			}
		}
	}
}

func TestFragmentsAndInterleavedControl(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	var b []byte
	b = append(b, frame(false, OpBinary, []byte("hel"), &key)...)
	b = append(b, frame(true, OpPing, []byte("p"), &key)...)
	b = append(b, frame(false, OpContinuation, []byte("lo "), &key)...)
	b = append(b, frame(true, OpContinuation, []byte("world"), &key)...)
	r := reader(b, true, 100)
	op, p, err := r.Next()
	if err != nil || op != OpPing || string(p) != "p" {
		t.Fatalf("want ping first, got %v %q %v", op, p, err)
	}
	op, p, err = r.Next()
	if err != nil || op != OpBinary || string(p) != "hello world" {
		t.Fatalf("got %v %q %v", op, p, err)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("want EOF at end, got %v", err)
	}
}

func TestReaderRejects(t *testing.T) {
	key := [4]byte{1, 1, 1, 1}
	big := bytes.Repeat([]byte("x"), 200)
	cases := []struct {
		name   string
		in     []byte
		server bool
		want   string
	}{
		{"unmasked client frame", frame(true, OpBinary, []byte("x"), nil), true, "not masked"},
		{"masked server frame", frame(true, OpBinary, []byte("x"), &key), false, "masked"},
		{"reserved bits", append([]byte{0x82 | 0x40, 0}, nil...), false, "reserved"},
		{"unknown opcode", []byte{0x83, 0}, false, "opcode"},
		{"fragmented control", frame(false, OpPing, nil, nil), false, "fragmented control"},
		{"long control", frame(true, OpPing, big[:126], nil), false, "125"},
		{"stray continuation", frame(true, OpContinuation, []byte("x"), nil), false, "continuation"},
		{"data inside fragments", append(frame(false, OpBinary, []byte("a"), nil), frame(true, OpBinary, []byte("b"), nil)...), false, "inside"},
		{"non-minimal length", []byte{0x82, 126, 0, 5, 1, 2, 3, 4, 5}, false, "minimally"},
		{"bad close code", frame(true, OpClose, []byte{0x03, 0xED}, nil), false, "close code"},
		{"one-byte close", frame(true, OpClose, []byte{3}, nil), false, "1-byte"},
	}
	for _, c := range cases {
		_, _, err := reader(c.in, c.server, 100).Next()
		var pe *ProtocolError
		if !errors.As(err, &pe) || !strings.Contains(pe.What, c.want) {
			t.Errorf("%s: got %v, want a ProtocolError mentioning %q", c.name, err, c.want)
		}
	}
	if _, _, err := reader(frame(true, OpBinary, big, nil), false, 100).Next(); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("oversized message: got %v", err)
	}
	frag := append(frame(false, OpBinary, big[:60], nil), frame(true, OpContinuation, big[:60], nil)...)
	if _, _, err := reader(frag, false, 100).Next(); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("oversized fragmented message: got %v", err)
	}
	if _, _, err := reader(frame(true, OpBinary, big, nil)[:50], false, 1000).Next(); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated frame: got %v", err)
	}
}

func TestCloseRoundTrip(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes: must be cut at a rune boundary
	p := AppendClose(nil, CloseRejected, long)
	if len(p) > MaxControlPayload {
		t.Fatalf("close payload %d bytes", len(p))
	}
	code, reason, err := ParseClose(p)
	if err != nil || code != CloseRejected || !strings.HasPrefix(long, reason) || reason == "" {
		t.Fatalf("got %d %q %v", code, reason, err)
	}
}

func TestHandshake(t *testing.T) {
	key := NewKey([16]byte{1, 2, 3})
	req := AppendUpgradeRequest(nil, "peer.local:1234", key)
	got, err := ReadUpgradeRequest(bufio.NewReader(bytes.NewReader(req)))
	if err != nil || got != key {
		t.Fatalf("request: %q %v", got, err)
	}
	resp := AppendUpgradeResponse(nil, key)
	if err := ReadUpgradeResponse(bufio.NewReader(bytes.NewReader(resp)), key); err != nil {
		t.Fatalf("response: %v", err)
	}
	if err := ReadUpgradeResponse(bufio.NewReader(bytes.NewReader(resp)), NewKey([16]byte{9})); err == nil {
		t.Fatal("response with the wrong accept key was accepted")
	}
	// RFC 6455 §1.3's worked example.
	if a := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); a != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", a)
	}
	bad := strings.Replace(string(req), Subprotocol, "nearnet.v2", 1)
	_, err = ReadUpgradeRequest(bufio.NewReader(strings.NewReader(bad)))
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Reason, "version") {
		t.Fatalf("unknown version: %v", err)
	}
	root := strings.Replace(string(req), Path, "/", 1) // Network framework to a Bonjour endpoint
	if got, err := ReadUpgradeRequest(bufio.NewReader(strings.NewReader(root))); err != nil || got != key {
		t.Fatalf("request for /: %q %v", got, err)
	}
	wrongPath := strings.Replace(string(req), Path, "/other", 1)
	if _, err := ReadUpgradeRequest(bufio.NewReader(strings.NewReader(wrongPath))); !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("wrong path: %v", err)
	}
	refusal := AppendErrorResponse(nil, &HandshakeError{Status: 400, Reason: "nope"})
	err = ReadUpgradeResponse(bufio.NewReader(bytes.NewReader(refusal)), key)
	if !errors.As(err, &he) || he.Status != 400 || he.Reason != "nope" {
		t.Fatalf("refusal: %v", err)
	}
}

func TestHello(t *testing.T) {
	h := &Hello{Version: 1, Peer: strings.Repeat("ab", 16), Name: "alice", Meta: map[string]string{"k": "v"}, Proof: bytes.Repeat([]byte{7}, ProofLen)}
	b, err := AppendHello(nil, h)
	if err != nil || Kind(b[0]) != KindHello {
		t.Fatal(err)
	}
	got, err := ParseHello(b[1:])
	if err != nil || got.Peer != h.Peer || got.Name != "alice" || got.Meta["k"] != "v" || !bytes.Equal(got.Proof, h.Proof) {
		t.Fatalf("got %+v %v", got, err)
	}
	for _, bad := range []string{`{}`, `{"version":1,"peer":"AB"}`, `{"version":0,"peer":"` + h.Peer + `"}`, `[`, `{"version":1,"peer":"` + strings.Repeat("AB", 16) + `"}`} {
		var he *HelloError
		if _, err := ParseHello([]byte(bad)); !errors.As(err, &he) {
			t.Errorf("%s: got %v, want HelloError", bad, err)
		}
	}
}

// TestHelloVersionsAndFaults pins PROTOCOL.md section 6: any integer
// version from 1 is accepted, everything else refused, and each refusal
// names its fault.
func TestHelloVersionsAndFaults(t *testing.T) {
	peer := `"peer":"` + strings.Repeat("ab", 16) + `"`
	for _, v := range []string{"1", "2", "3", "99"} {
		h, err := ParseHello([]byte(`{"version":` + v + `,` + peer + `}`))
		if err != nil {
			t.Errorf("version %s: %v", v, err)
			continue
		}
		if err := h.CheckAnswer(); (err == nil) != (v == "1") {
			t.Errorf("version %s as the listener's answer: %v", v, err)
		}
	}
	proof := base64.StdEncoding.EncodeToString(make([]byte, ProofLen))
	for _, c := range []struct{ body, fault string }{
		{`{"version":0,` + peer + `}`, "unsupported version 0"},
		{`{"version":-1,` + peer + `}`, "unsupported version -1"},
		{`{"version":"1",` + peer + `}`, `version "1" is not a JSON integer`},
		{`{"version":1.0,` + peer + `}`, "version 1.0 is not a JSON integer"},
		{`{` + peer + `}`, "missing version"},
		{`[1]`, "not a JSON object"},
		{`{"version":1,`, "not valid JSON"},
		{`{"version":1,"peer":7}`, `field "peer" must be a JSON string`},
		{`{"version":1,` + peer + `,"proof":"` + strings.TrimRight(proof, "=") + `"}`, "proof is not valid base64"},
		{`{"version":1,` + peer + `,"proof":"AAAA"}`, "proof is 3 bytes, want 32"},
	} {
		_, err := ParseHello([]byte(c.body))
		var he *HelloError
		if !errors.As(err, &he) || !strings.Contains(he.What, c.fault) {
			t.Errorf("%s: got %v, want a HelloError saying %q", c.body, err, c.fault)
		}
	}
	if h, err := ParseHello([]byte(`{"version":1,` + peer + `,"proof":"` + proof + `"}`)); err != nil || len(h.Proof) != ProofLen {
		t.Errorf("padded proof: %v", err)
	}
}

// TestUpgradeRequestTimeout: a request that does not arrive within the
// deadline is answered 408 (PROTOCOL.md section 4).
func TestUpgradeRequestTimeout(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go a.Write([]byte("GET " + Path + " HTTP/1.1\r\n"))
	b.SetReadDeadline(time.Unix(1, 0)) // the handshake timeout, already over
	_, err := ReadUpgradeRequest(bufio.NewReader(b))
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 408 {
		t.Fatalf("got %v, want a 408 HandshakeError", err)
	}
}
