package resource

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/nearnet/nearnet/internal/specvec"
)

// TestResourceVectors asserts PROTOCOL.md's resource vectors (appendix A):
// the frames this package writes for a resumed transfer and the two
// hashes, each frame written as its length in hex and its JSON body.
func TestResourceVectors(t *testing.T) {
	v := specvec.Load(t)
	content := []byte(v.Get("res.content"))
	prefix, whole := sha256.Sum256(content[:5]), sha256.Sum256(content)
	v.Check("res.prefix_sha256", hex.EncodeToString(prefix[:]))
	v.Check("res.sha256", hex.EncodeToString(whole[:]))
	size := int64(len(content))
	for _, c := range []struct {
		name string
		msg  any
	}{
		{"res.offer", offerMsg{V: 1, Name: "a.txt", Size: &size}},
		{"res.accept_new", replyMsg{Accept: true}},
		{"res.accept_resume", replyMsg{Accept: true, Offset: 5, Prefix: hex.EncodeToString(prefix[:])}},
		{"res.start", startMsg{Offset: new(int64(5))}},
		{"res.trailer", trailerMsg{SHA256: hex.EncodeToString(whole[:])}},
		{"res.result", resultMsg{OK: true}},
	} {
		b, err := appendFrame(nil, c.msg)
		if err != nil {
			t.Fatal(err)
		}
		v.Check(c.name, fmt.Sprintf("%x %s", b[:4], b[4:]))
	}
}
