//go:build linux && !race

package dgram

import "testing"

// TestSendAllocs: on Linux, sending allocates nothing (pooled buffers, a
// sockaddr built once per peer, a send operation bound once).
func TestSendAllocs(t *testing.T) {
	p := newPair(t, true, &Config{QueueLen: 1})
	payload := make([]byte, 1200)
	p.a.Send(payload) // the first send looks up the path MTU
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.a.Send(payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Send allocates %v times per datagram", n)
	}
}
