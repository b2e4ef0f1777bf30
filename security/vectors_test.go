package security

import (
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/nearnet/nearnet/internal/specvec"
)

// TestProofVectors asserts PROTOCOL.md's PSK proof vectors (appendix A).
func TestProofVectors(t *testing.T) {
	v := specvec.Load(t)
	var key Key
	copy(key[:], unhex(t, v.Get("psk.key")))
	for _, role := range []string{"client", "server"} {
		p := proofFrom(key, unhex(t, v.Get("psk.exporter_"+role)))
		v.Check("psk.proof_"+role, hex.EncodeToString(p))
		v.Check("psk.proof_"+role+"_base64", base64.StdEncoding.EncodeToString(p))
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}
