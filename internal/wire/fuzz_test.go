package wire

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the frame reader on both sides: it
// must return messages or an error, never panic or allocate past max.
func FuzzReader(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	f.Add(frame(true, OpBinary, []byte("\x02hello"), &key), true)
	f.Add(frame(true, OpBinary, []byte("\x02hello"), nil), false)
	f.Add(append(frame(false, OpBinary, []byte("ab"), nil), frame(true, OpContinuation, []byte("cd"), nil)...), false)
	f.Add(frame(true, OpClose, AppendClose(nil, 1000, "bye"), nil), false)
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, server bool) {
		r := NewReader(bufio.NewReader(bytes.NewReader(b)), server, 4096)
		for i := 0; i < 100; i++ {
			op, p, err := r.Next()
			if err != nil {
				return
			}
			if len(p) > 4096 {
				t.Fatalf("message of %d bytes over the maximum", len(p))
			}
			if op == OpClose {
				if _, _, err := ParseClose(p); err != nil {
					t.Fatalf("Next returned a close frame ParseClose rejects: %v", err)
				}
			}
		}
	})
}

func FuzzUpgradeRequest(f *testing.F) {
	f.Add(AppendUpgradeRequest(nil, "h:1", NewKey([16]byte{})))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := ReadUpgradeRequest(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && len(key) != 24 {
			t.Fatalf("accepted key %q", key)
		}
	})
}

func FuzzUpgradeResponse(f *testing.F) {
	key := NewKey([16]byte{5})
	f.Add(AppendUpgradeResponse(nil, key))
	f.Add(AppendErrorResponse(nil, &HandshakeError{Status: 400, Reason: "x"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadUpgradeResponse(bufio.NewReader(bytes.NewReader(b)), key)
	})
}

func FuzzHello(f *testing.F) {
	b, _ := AppendHello(nil, &Hello{Version: 1, Peer: "0123456789abcdef0123456789abcdef", Name: "n", Meta: map[string]string{"a": "b"}, Proof: make([]byte, ProofLen)})
	f.Add(b[1:])
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":"1","peer":7,"proof":"AAA"}`))
	f.Add([]byte(`{"version":99,"peer":"0123456789abcdef0123456789abcdef","proof":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		if len(h.Peer) != 32 || len(h.Name) > MaxNameLen || len(h.Meta) > MaxMetaKeys || h.Version < 1 || h.Proof != nil && len(h.Proof) != ProofLen {
			t.Fatalf("accepted an invalid hello: %+v", h)
		}
		// What was accepted must survive a round trip.
		e, err := AppendHello(nil, h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseHello(e[1:]); err != nil {
			t.Fatalf("re-encoded hello rejected: %v", err)
		}
	})
}

func FuzzClose(f *testing.F) {
	f.Add(AppendClose(nil, 1000, "bye"))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, reason, err := ParseClose(b)
		if err != nil || code == CloseNoStatus {
			return
		}
		if c2, r2, err := ParseClose(AppendClose(nil, code, reason)); err != nil || c2 != code || (len(reason) <= 123 && r2 != reason) {
			t.Fatalf("round trip of %d %q: %d %q %v", code, reason, c2, r2, err)
		}
	})
}

// FuzzPair: ParsePair accepts only the two pairing kinds at their sizes and
// gives back what AppendPair wrote.
func FuzzPair(f *testing.F) {
	f.Add(AppendPair(nil, KindPair, append(append([]byte{32}, make([]byte, 32)...), 5, 'o', 'f', 'f', 'e', 'r')))
	f.Add(AppendPair(nil, KindPairConfirm, make([]byte, PairTagLen)))
	f.Add([]byte{byte(KindHello)})
	f.Fuzz(func(t *testing.T, p []byte) {
		k, b, err := ParsePair(p)
		if err != nil {
			return
		}
		if k != KindPair && k != KindPairConfirm {
			t.Fatalf("kind %#x accepted", k)
		}
		if k == KindPairConfirm && len(b) != PairTagLen || len(b) > MaxPairMessage {
			t.Fatalf("body of %d bytes accepted for kind %#x", len(b), k)
		}
		if !bytes.Equal(AppendPair(nil, k, b), p) {
			t.Fatal("ParsePair and AppendPair disagree")
		}
	})
}

// FuzzReaderReserve: a Reader whose reserve function refuses every other
// request returns, after retrying each ErrNoRoom, the same messages and
// error as one without, and every data message it returns was granted
// whole, in the frames' sizes.
func FuzzReaderReserve(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	f.Add(frame(true, OpBinary, []byte("\x02hello"), &key), true)
	f.Add(append(frame(false, OpBinary, []byte("\x02b"), nil), frame(true, OpContinuation, []byte("cd"), nil)...), false)
	f.Add(append(frame(true, OpPing, []byte("p"), nil), frame(true, OpBinary, []byte("\x06\x00"), nil)...), false)
	f.Fuzz(func(t *testing.T, b []byte, server bool) {
		type result struct {
			op  Opcode
			p   string
			err string
		}
		read := func(r *Reader, granted *int) []result {
			var out []result
			for i := 0; i < 100; i++ {
				op, p, err := r.Next()
				if err == ErrNoRoom {
					i--
					continue
				}
				if err != nil {
					return append(out, result{err: err.Error()})
				}
				if !op.isControl() && granted != nil {
					if *granted != len(p) {
						t.Fatalf("a message of %d bytes with %d granted", len(p), *granted)
					}
					*granted = 0
				}
				out = append(out, result{op, string(p), ""})
			}
			return out
		}
		want := read(NewReader(bufio.NewReader(bytes.NewReader(b)), server, 4096), nil)
		r := NewReader(bufio.NewReader(bytes.NewReader(b)), server, 4096)
		asked, granted := 0, 0
		r.SetReserve(func(n int, kind byte) bool {
			asked++
			if asked%2 == 1 {
				return false
			}
			granted += n
			return true
		})
		got := read(r, &granted)
		if len(got) != len(want) {
			t.Fatalf("%d results with refusals, %d without", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("result %d: %+v with refusals, %+v without", i, got[i], want[i])
			}
		}
	})
}
