package nearnet

import (
	"errors"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/wire"
)

// A node with ICE servers and one without share a session as before: no
// ICE exchange starts (the peer's hello has no "ice" capability), an ICE
// message reaching the older side is ignored as any extension is, and a
// malformed one reaching the newer side is ignored too.
func TestICEWithPeerWithoutICE(t *testing.T) {
	a := newNode(t, Config{ICEServers: []ICEServer{{URL: "stun:127.0.0.1:9"}}})
	b := newNode(t, Config{})
	ca, cb := pair(t, a, b)
	ctx := ctxT(t)
	sendOne(t, ctx, ca, cb, "one")
	if a.ice.Exchanges() != 0 {
		t.Fatal("an ICE exchange started with a peer that does not take part")
	}
	a.ice.Send(ca.s, &wire.ICE{Gen: 1, Ufrag: "abcd", Pwd: strings.Repeat("p", 22)})
	sendOne(t, ctx, ca, cb, "two")
	cb.s.SendPath().Enqueue(wire.OpBinary, 0, []byte{byte(wire.KindICE), '{', 'x'})
	sendOne(t, ctx, cb, ca, "three")
	if ca.Path().Kind != PathLAN || cb.Path().Kind != PathLAN {
		t.Fatalf("paths %v / %v, want the LAN", ca.Path(), cb.Path())
	}
}

func TestICEServersValidated(t *testing.T) {
	for _, s := range []ICEServer{
		{URL: "turn:10.0.0.1:3478"}, // no credentials
		{URL: "http://10.0.0.1"},
	} {
		_, err := NewNode(&Config{Key: testKey, ICEServers: []ICEServer{s}})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "Config.ICEServers" {
			t.Errorf("%q: got %v, want a ConfigError for Config.ICEServers", s.URL, err)
		}
	}
}
