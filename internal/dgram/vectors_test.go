package dgram

import (
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/nearnet/nearnet/internal/specvec"
)

// TestDatagramVectors asserts PROTOCOL.md's datagram vectors (appendix A):
// the exporter context, the keys, and a sealed datagram each way, which
// must also open on the other side.
func TestDatagramVectors(t *testing.T) {
	v := specvec.Load(t)
	session := func(name string) SessionID {
		n, err := strconv.ParseUint(v.Get(name), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		return SessionID(n)
	}
	dialer, listener := session("dgram.dialer_session"), session("dgram.listener_session")
	v.Check("dgram.context", hex.EncodeToString(ExporterContext(dialer, listener)))
	material, err := hex.DecodeString(v.Get("dgram.material"))
	if err != nil {
		t.Fatal(err)
	}
	dk, err := KeysFromExporter(material, true)
	if err != nil {
		t.Fatal(err)
	}
	lk, _ := KeysFromExporter(material, false)
	v.Check("dgram.dialer_key", hex.EncodeToString(dk.Send[:]))
	v.Check("dgram.listener_key", hex.EncodeToString(lk.Send[:]))
	if dk.Recv != lk.Send || lk.Recv != dk.Send {
		t.Fatal("the two sides' keys do not pair up")
	}
	pn, err := strconv.ParseUint(v.Get("dgram.packet_number"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var n nonceBuf
	v.Check("dgram.nonce", hex.EncodeToString(n.set(pn)))
	d := seal(newAEAD(&dk.Send), &n, nil, listener, pn, []byte(v.Get("dgram.payload")))
	v.Check("dgram.header", hex.EncodeToString(d[:HeaderLen]))
	v.Check("dgram.datagram", hex.EncodeToString(d))
	h, err := parseHeader(d)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := open(newAEAD(&lk.Recv), &n, h, d); err != nil || string(p) != v.Get("dgram.payload") {
		t.Fatalf("the listener opens %q, %v", p, err)
	}
	r := seal(newAEAD(&lk.Send), &n, nil, dialer, 0, []byte(v.Get("dgram.reply_payload")))
	v.Check("dgram.reply_header", hex.EncodeToString(r[:HeaderLen]))
	v.Check("dgram.reply_datagram", hex.EncodeToString(r))
}
