package icepath

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestPeerListening: the redial takes the mailbox of the peer's record
// now, else the one it reached the peer through; a record without a
// usable mbx does not count.
func TestPeerListening(t *testing.T) {
	id := [16]byte{1, 2, 3}
	for _, tc := range []struct {
		name   string
		lookup func(context.Context, [16]byte) map[string]string
		known  string
		want   string
	}{
		{"no lookup", nil, "192.0.2.1:3478", "192.0.2.1:3478"},
		{"record", func(_ context.Context, got [16]byte) map[string]string {
			if got != id {
				return nil
			}
			return map[string]string{TXTMailbox: "198.51.100.7:49200"}
		}, "192.0.2.1:3478", "198.51.100.7:49200"},
		{"no record", func(context.Context, [16]byte) map[string]string { return nil }, "192.0.2.1:3478", "192.0.2.1:3478"},
		{"bad mbx", func(context.Context, [16]byte) map[string]string {
			return map[string]string{TXTMailbox: "198.51.100.7"}
		}, "", ""},
		{"port 0", func(context.Context, [16]byte) map[string]string {
			return map[string]string{TXTMailbox: "198.51.100.7:0"}
		}, "192.0.2.1:3478", "192.0.2.1:3478"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ni := &Node{c: Config{Lookup: tc.lookup}}
			if got := ni.peerListening(context.Background(), id, tc.known); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFirstContactAddress: the attempt of first contact (and so its
// link's Dialed, which the session's redial dials over the LAN
// transports) is "mbx:" and the mailbox, which no LAN transport takes
// for an address: a parse error at once, not a refusal that would say
// the peer no longer listens, and no DNS query.
func TestFirstContactAddress(t *testing.T) {
	ni := &Node{}
	if got := ni.Via(map[string]string{TXTMailbox: "not an address"}); got != nil {
		t.Fatalf("attempts %v for a bad mbx", got)
	}
	for _, mbx := range []string{"127.0.0.1:9", "[::1]:9"} {
		at := ni.Via(map[string]string{TXTMailbox: mbx})
		if len(at) != 1 || at[0].Addr != mailboxPrefix+mbx {
			t.Fatalf("attempts %+v, want one to %s%s", at, mailboxPrefix, mbx)
		}
		for _, network := range []string{"tcp", "udp"} {
			c, err := net.Dial(network, at[0].Addr)
			if err == nil {
				c.Close()
				t.Fatalf("%s dial of %s succeeded", network, at[0].Addr)
			}
			var ae *net.AddrError
			if !errors.As(err, &ae) || errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("%s dial of %s: %v; want an address error", network, at[0].Addr, err)
			}
		}
	}
}
