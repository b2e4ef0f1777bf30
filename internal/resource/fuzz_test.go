package resource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// frameBody returns the body of the frame encoding v.
func frameBody(t testing.TB, v any) []byte {
	b, err := appendFrame(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b[4:]
}

func i64(v int64) *int64 { return &v }

func FuzzDecodeOffer(f *testing.F) {
	for _, m := range []offerMsg{
		{V: 1, Name: "a.txt", Size: i64(0)},
		{V: 1, Name: "album/2024/a.jpg", Size: i64(1 << 40), Meta: map[string]string{"type": "image/jpeg", "": "x"}},
		{V: 2, Name: "a", Size: i64(1)},
		{V: 1, Name: "../x", Size: i64(1)},
		{V: 1, Name: "a", Size: i64(-1)},
	} {
		f.Add(frameBody(f, m))
	}
	f.Add([]byte(`{"v":1,"name":"a","size":1e3}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeOffer(b)
		if err != nil {
			var ne *NameError
			var pe *ProtocolError
			if !errors.As(err, &ne) && !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if _, err := SafeName(o.Name); err != nil || o.Size < 0 || o.Size > maxSize {
			t.Fatalf("accepted offer %+v (name: %v)", o, err)
		}
		// What was accepted survives a round trip.
		o2, err := decodeOffer(frameBody(t, offerMsg{V: version, Name: o.Name, Size: &o.Size, Meta: o.Meta}))
		if err != nil || !reflect.DeepEqual(o, o2) {
			t.Fatalf("round trip: %+v -> %+v, %v", o, o2, err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	sum := sha256.Sum256([]byte("x"))
	for _, m := range []replyMsg{
		{Accept: true},
		{Accept: true, Offset: 100, Prefix: hex.EncodeToString(sum[:])},
		{Accept: true, Offset: 100},
		{Code: codeExists, Reason: "a file of that name exists"},
	} {
		f.Add(frameBody(f, m), int64(1000))
	}
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if size < 0 {
			size = -size
		}
		r, err := decodeReply(b, size)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if r.accept && (r.offset < 0 || r.offset > size) {
			t.Fatalf("accepted offset %d of %d", r.offset, size)
		}
	})
}

func FuzzDecodeStart(f *testing.F) {
	f.Add(frameBody(f, startMsg{Offset: i64(0)}), int64(0))
	f.Add(frameBody(f, startMsg{Offset: i64(4096)}), int64(4096))
	f.Add(frameBody(f, startMsg{Offset: i64(5)}), int64(4096))
	f.Add([]byte(`{}`), int64(1))
	f.Fuzz(func(t *testing.T, b []byte, offered int64) {
		off, err := decodeStart(b, offered)
		if err == nil && off != 0 && off != offered {
			t.Fatalf("start offset %d accepted; offered %d", off, offered)
		}
	})
}

func FuzzDecodeTrailer(f *testing.F) {
	sum := sha256.Sum256(nil)
	f.Add(frameBody(f, trailerMsg{SHA256: hex.EncodeToString(sum[:])}))
	f.Add(frameBody(f, trailerMsg{SHA256: strings.ToUpper(hex.EncodeToString(sum[:]))}))
	f.Add(frameBody(f, trailerMsg{SHA256: "00"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeTrailer(b)
		if err != nil {
			return
		}
		again, err := decodeTrailer(frameBody(t, trailerMsg{SHA256: hex.EncodeToString(got[:])}))
		if err != nil || again != got {
			t.Fatalf("round trip: %x -> %x, %v", got, again, err)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add(frameBody(f, resultMsg{OK: true}))
	f.Add(frameBody(f, resultMsg{Code: codeHashMismatch, Error: "content SHA-256 does not match the sender's"}))
	f.Add(frameBody(f, resultMsg{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := decodeResult(b)
		var re *ReceiverError
		var pe *ProtocolError
		if err != nil && !errors.As(err, &re) && !errors.As(err, &pe) {
			t.Fatalf("error of type %T: %v", err, err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	b, _ := appendFrame(nil, resultMsg{OK: true})
	f.Add(b)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 1, '{'})
	f.Fuzz(func(t *testing.T, in []byte) {
		body, err := readFrame(bytes.NewReader(in))
		if err != nil {
			return
		}
		if n := binary.BigEndian.Uint32(in); int(n) != len(body) || len(body) < minFrame || len(body) > maxFrame {
			t.Fatalf("frame of %d bytes from header %d", len(body), n)
		}
	})
}

func FuzzSafeName(f *testing.F) {
	for _, n := range safeNames {
		f.Add(n)
	}
	for _, c := range hostileNames {
		f.Add(c.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		local, err := SafeName(name)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) || local != "" {
				t.Fatalf("SafeName(%q) = %q, %v", name, local, err)
			}
			return
		}
		if !filepath.IsLocal(local) || strings.ContainsAny(name, "\\:\x00") || len(name) > MaxNameLen {
			t.Fatalf("SafeName accepted %q as %q", name, local)
		}
		for c := range strings.SplitSeq(name, "/") {
			if c == "" || c == "." || c == ".." || isDeviceName(c) || strings.HasSuffix(c, ".") || strings.HasSuffix(c, " ") {
				t.Fatalf("SafeName accepted %q with component %q", name, c)
			}
		}
	})
}

// FuzzReceiver feeds arbitrary bytes to a receiver as if from a sender:
// it must never panic, and never write outside its directory.
func FuzzReceiver(f *testing.F) {
	var good []byte
	content := []byte("hello")
	sum := sha256.Sum256(content)
	good, _ = appendFrame(good, offerMsg{V: 1, Name: "d/a.txt", Size: i64(int64(len(content)))})
	good, _ = appendFrame(good, startMsg{Offset: i64(0)})
	good = append(good, content...)
	good, _ = appendFrame(good, trailerMsg{SHA256: hex.EncodeToString(sum[:])})
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Fuzz(func(t *testing.T, in []byte) {
		base := t.TempDir()
		dir := filepath.Join(base, "in")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stream := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), io.Discard}
		ctx := context.Background()
		incoming, err := ReadOffer(ctx, stream)
		if err != nil {
			return
		}
		rcv, err := incoming.Accept(ctx, dir, nil, nil)
		if err == nil {
			if rel, rerr := filepath.Rel(dir, rcv.Path); rerr != nil || !filepath.IsLocal(rel) {
				t.Fatalf("received to %q, outside %q", rcv.Path, dir)
			}
		}
		for _, p := range listDir(t, base) {
			if p != "in" && !strings.HasPrefix(p, "in/") {
				t.Fatalf("wrote %q outside the directory", p)
			}
		}
	})
}

// TestAcceptCarriesOffsetZero: an acceptance of a new file says
// "offset":0 (PROTOCOL.md section 13); a rejection has no offset.
func TestAcceptCarriesOffsetZero(t *testing.T) {
	if got := string(frameBody(t, replyMsg{Accept: true})); got != `{"accept":true,"offset":0}` {
		t.Errorf("acceptance of a new file: %s", got)
	}
	if got := string(frameBody(t, replyMsg{Code: codeExists, Reason: "r"})); got != `{"accept":false,"code":"exists","reason":"r"}` {
		t.Errorf("rejection: %s", got)
	}
}
