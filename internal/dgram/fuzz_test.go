package dgram

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

var fuzzKey = Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

const fuzzSession SessionID = 0x0123456789abcdef

// fuzzSeeds are real encoder output: sealed and plaintext datagrams.
func fuzzSeeds() [][]byte {
	aead := newAEAD(&fuzzKey)
	var seeds [][]byte
	for i, p := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0x5a}, 1200)} {
		seeds = append(seeds,
			seal(aead, new(nonceBuf), nil, fuzzSession, uint64(i), p),
			appendPlain(nil, fuzzSession, uint64(i), p))
	}
	return append(seeds, seal(aead, new(nonceBuf), nil, fuzzSession, 1<<63, []byte("high")), []byte{kindSealed}, nil)
}

// FuzzDecode feeds arbitrary bytes to the datagram decoder (header parse and
// AEAD open). It must never panic, and it may accept only what the encoder
// produces: sealing what it returned must give back the same bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	aead := newAEAD(&fuzzKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		if h.kind == kindPlain {
			if again := appendPlain(nil, h.session, h.pn, b[HeaderLen:]); !bytes.Equal(again, b) {
				t.Fatalf("plaintext datagram does not re-encode: %x", b)
			}
			return
		}
		p, err := open(aead, new(nonceBuf), h, bytes.Clone(b))
		if err != nil {
			return
		}
		if again := seal(aead, new(nonceBuf), nil, h.session, h.pn, p); !bytes.Equal(again, b) {
			t.Fatalf("accepted a datagram the encoder did not make: %x", b)
		}
	})
}

// FuzzReceive feeds a sequence of datagrams (each prefixed by a 2-byte
// length) to a secure flow's receive path. Nothing panics, every datagram is
// either delivered or counted, and the flow delivers only authentic
// datagrams, each packet number at most once.
func FuzzReceive(f *testing.F) {
	var seq []byte
	for _, s := range fuzzSeeds() {
		seq = binary.BigEndian.AppendUint16(seq, uint16(len(s)))
		seq = append(seq, s...)
	}
	f.Add(seq)
	f.Add(append(seq, seq...))
	aead := newAEAD(&fuzzKey)
	f.Fuzz(func(t *testing.T, seq []byte) {
		cfg, _ := (*Config)(nil).withDefaults()
		m := &Mux{cfg: cfg, flows: map[SessionID]*Flow{}}
		fl := &Flow{mux: m, local: fuzzSession, remote: 1, learn: true,
			opener: aead, sealer: aead, notify: make(chan struct{}, 1), done: make(chan struct{})}
		m.flows[fuzzSession] = fl
		authentic := map[uint64]bool{}
		var count uint64
		from := netip.MustParseAddrPort("192.0.2.1:9")
		for len(seq) >= 2 && count < 1000 {
			n := int(binary.BigEndian.Uint16(seq))
			seq = seq[2:]
			n = min(n, len(seq))
			b := bytes.Clone(seq[:n])
			seq = seq[n:]
			count++
			if h, err := parseHeader(b); err == nil && h.session == fuzzSession {
				if _, err := open(aead, new(nonceBuf), h, bytes.Clone(b)); err == nil {
					authentic[h.pn] = true
				}
			}
			m.dispatch(&packet{buf: b, n: len(b), from: from})
		}
		st, ms := fl.Stats(), m.Stats()
		d := st.Dropped
		if got := st.Received + d.Auth + d.Replay + d.TooOld + d.Truncated + d.QueueFull + ms.Dropped.Malformed + ms.Dropped.UnknownSession; got != count {
			t.Fatalf("%d datagrams in, %d delivered or counted: %+v %+v", count, got, st, ms)
		}
		if st.Received > uint64(len(authentic)) {
			t.Fatalf("delivered %d, but only %d distinct authentic packet numbers went in", st.Received, len(authentic))
		}
		if len(authentic) > 0 && fl.RemoteAddr() != from {
			t.Fatalf("flow did not learn the sender's address")
		}
	})
}

// FuzzReplayWindow checks the window against a plain model: a packet number
// is accepted if and only if it was not accepted before and is above the
// highest accepted or less than replayWindowSize below it.
func FuzzReplayWindow(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0xff, 0xff, 0, 3})
	f.Add(bytes.Repeat([]byte{0x08, 0x00, 0x87, 0xc0}, 8))
	f.Fuzz(func(t *testing.T, steps []byte) {
		var w replayWindow
		seen := map[uint64]bool{}
		var last, pn uint64
		for len(steps) >= 2 {
			// Each step moves pn by a signed 16-bit amount.
			d := int16(binary.BigEndian.Uint16(steps))
			steps = steps[2:]
			if d < 0 && uint64(-int64(d)) > pn {
				pn = 0
			} else {
				pn = uint64(int64(pn) + int64(d))
			}
			want := !seen[pn] && (pn > last || last-pn < replayWindowSize)
			got := w.check(pn) == replayOK
			if got != want {
				t.Fatalf("pn %d (highest %d): accepted %v, want %v", pn, last, got, want)
			}
			if got {
				w.update(pn)
				seen[pn] = true
				last = max(last, pn)
			}
		}
	})
}
