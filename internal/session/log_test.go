package session

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/nearnet/nearnet/internal/wire"
)

func TestLogAckAndResend(t *testing.T) {
	var l Log
	big := bytes.Repeat([]byte{'x'}, txSlab) // pooled, not slabbed
	for i := range 10 {
		l.Add(fmt.Appendf(nil, "m%d", i))
	}
	l.Add(big)
	if l.Next() != 11 || l.Base() != 0 {
		t.Fatalf("next %d base %d, want 11 0", l.Next(), l.Base())
	}
	room := l.Room()
	if err := l.AckTo(4); err != nil {
		t.Fatal(err)
	}
	select {
	case <-room:
	default:
		t.Fatal("an ack that dropped messages did not signal room")
	}
	if err := l.AckTo(2); err != nil { // stale
		t.Fatalf("stale ack: %v", err)
	}
	u := l.Unacked()
	if l.Base() != 4 || len(u) != 7 || string(u[0]) != "m4" || !bytes.Equal(u[6], big) {
		t.Fatalf("after ack 4: base %d, %d unacked, first %q", l.Base(), len(u), u[0])
	}
	p := l.Pending()
	p[0][0] = 'z'
	if string(l.Unacked()[0]) != "m4" {
		t.Fatal("Pending returned the log's own buffer")
	}
	var pe *wire.ProtocolError
	if err := l.AckTo(12); !errors.As(err, &pe) {
		t.Fatalf("ack beyond what was sent: %v, want a ProtocolError", err)
	}
	if err := l.AckTo(11); err != nil {
		t.Fatal(err)
	}
	if l.Bytes() != 0 || len(l.Unacked()) != 0 || l.Next() != 11 {
		t.Fatalf("all acked: %d bytes, %d unacked, next %d", l.Bytes(), len(l.Unacked()), l.Next())
	}
}

// The bound counts per-message overhead and never blocks an empty log, so a
// message larger than the limit still goes.
func TestLogFull(t *testing.T) {
	var l Log
	if l.Full(1<<20, 100) {
		t.Fatal("an empty log is never full")
	}
	l.Add(make([]byte, 10))
	if !l.Full(100-10-2*PerMessageOverhead+1, 100) || l.Full(100-10-2*PerMessageOverhead, 100) {
		t.Fatal("Full is off by the per-message overhead")
	}
}

// Compaction keeps numbering: after many partial acks the unacked messages
// are still the right ones.
func TestLogCompaction(t *testing.T) {
	var l Log
	for i := range 1000 {
		l.Add(fmt.Appendf(nil, "%d", i))
		if i%3 == 2 {
			if err := l.AckTo(uint64(i - 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, m := range l.Unacked() {
		if want := fmt.Sprint(l.Base() + uint64(i)); string(m) != want {
			t.Fatalf("message %d is %q, want %q", i, m, want)
		}
	}
}
