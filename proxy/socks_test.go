package proxy

import (
	"context"
	"strings"
	"testing"
)

// TestSOCKS5Answers runs the negotiation against fixed answers, for the
// ones Dante does not give.
func TestSOCKS5Answers(t *testing.T) {
	ok := "\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50"
	for _, tc := range []struct {
		name, answer string
		creds        bool
		kind         Kind
		phase        Phase
		status       int
	}{
		{"no auth ok", "\x05\x00" + ok, false, 0, 0, 0},
		{"password ok", "\x05\x02\x01\x00" + ok, true, 0, 0, 0},
		{"no method, creds", "\x05\xff", true, AuthFailed, PhaseSOCKSGreeting, 0},
		{"no method, no creds", "\x05\xff", false, AuthRequired, PhaseSOCKSGreeting, 0},
		{"bad password", "\x05\x02\x01\x01", true, AuthFailed, PhaseSOCKSAuth, 0},
		{"unoffered method", "\x05\x01", true, ProtocolError, PhaseSOCKSGreeting, 0},
		{"version 4", "\x04\x00", true, ProtocolError, PhaseSOCKSGreeting, 0},
		{"host unreachable", "\x05\x00\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00", false, TargetRefused, PhaseSOCKSConnect, 4},
		{"general failure", "\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00", false, TargetRefused, PhaseSOCKSConnect, 1},
		{"unknown reply", "\x05\x00\x05\x42\x00\x01\x00\x00\x00\x00\x00\x00", false, TargetRefused, PhaseSOCKSConnect, 0x42},
		{"bad reserved", "\x05\x00\x05\x00\x07\x01\x00\x00\x00\x00\x00\x00", false, ProtocolError, PhaseSOCKSConnect, 0},
		{"closed in greeting", "", true, ProtocolError, PhaseSOCKSGreeting, 0},
		{"closed in auth", "\x05\x02", true, ProtocolError, PhaseSOCKSAuth, 0},
		{"closed in connect", "\x05\x02\x01\x00\x05", true, ProtocolError, PhaseSOCKSConnect, 0},
		{"HTTP answer", "HTTP/1.1 400 Bad Request\r\n\r\n", true, ProtocolError, PhaseSOCKSGreeting, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "socks5h://127.0.0.1:1080"
			if tc.creds {
				raw = proxyURL("socks5h", testPass, "127.0.0.1:1080")
			}
			d := mustParse(t, raw)
			c, e := d.connectSOCKS(context.Background(), &scriptConn{r: strings.NewReader(tc.answer)}, "peer.example:443")
			if tc.kind == 0 {
				if e != nil {
					t.Fatal(e)
				}
				if n, _ := c.Read(make([]byte, 1)); n != 0 {
					t.Error("the reply was not read whole")
				}
				return
			}
			if e == nil {
				t.Fatal("no error")
			}
			got := wantKind(t, e, tc.kind)
			if got.Phase != tc.phase || got.Status != tc.status {
				t.Errorf("phase %v status %d, want %v %d", got.Phase, got.Status, tc.phase, tc.status)
			}
			t.Log(e)
		})
	}
}
