package nearnet

import (
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/nearnet/nearnet/internal/specvec"
	"github.com/nearnet/nearnet/internal/stream"
	"github.com/nearnet/nearnet/internal/wire"
)

// TestStreamVectors asserts PROTOCOL.md's stream key, handle and proof
// vectors (appendix A) against the code that makes them.
func TestStreamVectors(t *testing.T) {
	v := specvec.Load(t)
	l := &link{}
	var err error
	l.StreamKey, l.Handle, err = stream.Keys(v.Get("stream.websocket_key"), nil) // mode none
	if err != nil {
		t.Fatal(err)
	}
	v.Check("stream.key_none", hex.EncodeToString(l.StreamKey[:]))
	v.Check("stream.handle", l.Handle)
	e, err := hex.DecodeString(v.Get("stream.exporter"))
	if err != nil {
		t.Fatal(err)
	}
	open := &wire.StreamOpen{Handle: l.Handle, ID: 1}
	p := stream.Proof(&l.StreamKey, "client", e, open)
	v.Check("stream.proof_client", hex.EncodeToString(p))
	v.Check("stream.proof_client_base64", base64.StdEncoding.EncodeToString(p))
	v.Check("stream.proof_server", hex.EncodeToString(stream.Proof(&l.StreamKey, "server", e, open)))
	reply := &wire.StreamOpen{Handle: l.Handle, ID: 7, Reply: true}
	v.Check("stream.proof_client_reply", hex.EncodeToString(stream.Proof(&l.StreamKey, "client", nil, reply)))
}
