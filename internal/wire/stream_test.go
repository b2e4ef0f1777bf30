package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

const testHandle = "0123456789abcdef0123456789abcdef"

func TestStreamOpenRoundTrip(t *testing.T) {
	o := &StreamOpen{Handle: testHandle, ID: 7, Name: "video", Meta: map[string]string{"codec": "h264"}, Proof: bytes.Repeat([]byte{9}, 32)}
	b, err := AppendStreamOpen(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(StreamMagic)) {
		t.Fatalf("no magic: %q", b[:8])
	}
	got, err := ReadStreamOpen(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got.Handle != o.Handle || got.ID != 7 || got.Name != "video" || got.Meta["codec"] != "h264" || !bytes.Equal(got.Proof, o.Proof) {
		t.Fatalf("got %+v", got)
	}
}

func TestStreamOpenRejects(t *testing.T) {
	good := func() *StreamOpen {
		return &StreamOpen{Handle: testHandle, ID: 1, Proof: make([]byte, 32)}
	}
	for name, mutate := range map[string]func(*StreamOpen){
		"short handle":   func(o *StreamOpen) { o.Handle = "abc" },
		"upper handle":   func(o *StreamOpen) { o.Handle = strings.ToUpper(testHandle) },
		"short proof":    func(o *StreamOpen) { o.Proof = o.Proof[:31] },
		"reply and name": func(o *StreamOpen) { o.Reply, o.Name = true, "x" },
	} {
		o := good()
		mutate(o)
		b, err := appendStreamFrame([]byte(StreamMagic), o) // bypass the sender's checks
		if err != nil {
			t.Fatal(err)
		}
		var se *StreamError
		if _, err := ReadStreamOpen(bytes.NewReader(b)); !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a *StreamError", name, err)
		}
	}
	for name, o := range map[string]*StreamOpen{
		"long name":    {Handle: testHandle, Name: strings.Repeat("n", MaxStreamNameLen+1)},
		"invalid utf8": {Handle: testHandle, Name: "\xff"},
		"unknown kind": {Handle: testHandle, Kind: "telepathy"},
		"empty key":    {Handle: testHandle, Meta: map[string]string{"": "v"}},
		"big meta":     {Handle: testHandle, Meta: map[string]string{"k": strings.Repeat("v", MaxMetaLen)}},
	} {
		var se *StreamError
		if _, err := AppendStreamOpen(nil, o); !errors.As(err, &se) {
			t.Errorf("%s: AppendStreamOpen err = %v, want a *StreamError", name, err)
		}
	}
	if _, err := ReadStreamOpen(strings.NewReader("GET / HTTP/1.1\r\n")); err == nil {
		t.Error("an upgrade request was read as a stream open")
	}
	b, _ := AppendStreamOpen(nil, good())
	if _, err := ReadStreamOpen(bytes.NewReader(b[:len(b)-3])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated open: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestStreamAnswer(t *testing.T) {
	b, _ := AppendStreamAnswer(nil, &StreamAnswer{OK: true, Proof: make([]byte, 32)})
	if a, err := ReadStreamAnswer(bytes.NewReader(b)); err != nil || !a.OK {
		t.Fatalf("ok answer: %+v %v", a, err)
	}
	b, _ = AppendStreamAnswer(nil, &StreamAnswer{OK: false, Error: "too many streams waiting"})
	if a, err := ReadStreamAnswer(bytes.NewReader(b)); err != nil || a.OK || a.Error == "" {
		t.Fatalf("refusal: %+v %v", a, err)
	}
	b, _ = AppendStreamAnswer(nil, &StreamAnswer{OK: true})
	if _, err := ReadStreamAnswer(bytes.NewReader(b)); err == nil {
		t.Fatal("an accepting answer without proof was taken")
	}
}

func TestStreamRequestRefused(t *testing.T) {
	b, err := AppendStreamRequest(nil, &StreamRequest{ID: 3, Name: "n", Kind: StreamKindResource})
	if err != nil || Kind(b[0]) != KindStreamRequest {
		t.Fatalf("%q %v", b, err)
	}
	q, err := ParseStreamRequest(b[1:])
	if err != nil || q.ID != 3 || q.Kind != StreamKindResource {
		t.Fatalf("%+v %v", q, err)
	}
	r := AppendStreamRefused(nil, &StreamRefused{ID: 3, Error: strings.Repeat("e", 5000)})
	got, err := ParseStreamRefused(r[1:])
	if err != nil || got.ID != 3 || len(got.Error) != 1024 {
		t.Fatalf("%+v %v", got, err)
	}
}

func FuzzStreamOpen(f *testing.F) {
	b, _ := AppendStreamOpen(nil, &StreamOpen{Handle: testHandle, ID: 1, Name: "x", Meta: map[string]string{"a": "b"}, Proof: make([]byte, 32)})
	f.Add(b)
	f.Add([]byte(StreamMagic + "\x00\x02{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ReadStreamOpen(bytes.NewReader(b))
		if err != nil {
			return
		}
		if _, err := AppendStreamOpen(nil, o); err != nil {
			t.Fatalf("accepted an open it cannot encode: %v", err)
		}
	})
}

func FuzzStreamAnswer(f *testing.F) {
	b, _ := AppendStreamAnswer(nil, &StreamAnswer{OK: true, Proof: make([]byte, 32)})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ReadStreamAnswer(bytes.NewReader(b))
		if err == nil && a.OK == (len(a.Proof) != 32) {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func FuzzStreamRequest(f *testing.F) {
	b, _ := AppendStreamRequest(nil, &StreamRequest{ID: 1, Name: "n"})
	f.Add(b[1:])
	r := AppendStreamRefused(nil, &StreamRefused{ID: 1, Error: "no"})
	f.Add(r[1:])
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseStreamRequest(b); err == nil {
			if _, err := AppendStreamRequest(nil, q); err != nil {
				t.Fatalf("accepted a request it cannot encode: %v", err)
			}
		}
		ParseStreamRefused(b)
	})
}
