package ice_test

import (
	"errors"
	"testing"

	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/transport/ice"
)

func TestParseServer(t *testing.T) {
	for _, s := range []ice.Server{
		{URL: "stun:10.0.0.1:3478"},
		{URL: "turn:turn.example:3478?transport=tcp", Username: "u", Password: "p"},
		{URL: "turns:turn.example:5349", Username: "u", Password: "p"},
	} {
		if _, err := ice.ParseServer(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []ice.Server{
		{URL: "http://turn.example"},
		{URL: "turn:turn.example:3478"},                               // no credentials
		{URL: "stun:turn.example:3478", Username: "u", Password: "p"}, // STUN takes none
		{URL: "turn:turn.example:3478?transport=sctp", Username: "u", Password: "p"},
		{URL: ""},
	} {
		_, err := ice.ParseServer(s)
		var ce *nnerr.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%q: got %v, want a ConfigError", s.URL, err)
		}
	}
	if _, err := ice.NewAgent(ice.Config{Servers: []ice.Server{{URL: "turn:x:1"}}}); err == nil {
		t.Error("NewAgent took a TURN server without credentials")
	}
}
