package cli

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qr "github.com/piglig/go-qr"

	"github.com/nearnet/nearnet/security"
)

func init() {
	documented["code"] = map[string]string{"code": "string", "name": "string", "fingerprint": "string", "expires": "string", "attempts": "number", "uri": "string"}
	documented["paired"] = map[string]string{"name": "string", "peer": "string", "fingerprint": "string"}
	documented["pair_failed"] = map[string]string{"reason": "string"}
	documented["known_peer"] = map[string]string{"fingerprint": "string"}
	documented["forgotten"] = map[string]string{"fingerprint": "string"}
}

// pairFiles are a node's identity and known-peers file for pair.
type pairFiles struct{ id, known string }

func newPairFiles(t *testing.T) pairFiles {
	d := t.TempDir()
	return pairFiles{filepath.Join(d, "id.pem"), filepath.Join(d, "known_peers")}
}

func (f pairFiles) args() []string { return []string{"--identity", f.id, "--known-peers", f.known} }

func (f pairFiles) fingerprint(t *testing.T) string {
	t.Helper()
	id, err := security.LoadOrCreateIdentity(f.id)
	if err != nil {
		t.Fatal(err)
	}
	return id.Fingerprint().String()
}

// TestPairCommand: nearnet pair shows a code, nearnet pair CODE on the
// other side finds it by discovery; both print the peer and exit 0, both
// known-peers files hold the other, and id lists and forgets it.
func TestPairCommand(t *testing.T) {
	svc := service(t)
	a, b := newPairFiles(t), newPairFiles(t)
	shows := start(t, nil, append([]string{"pair", "--json", "--interface", "lo", "--service", svc, "--name", "desk"}, a.args()...)...)
	code := shows.stdout.waitEvent(t, "the code", isEvent("code"))["code"].(string)
	// The advert says that desk is pairing, and nothing of the code.
	browse := start(t, nil, "browse", "--json", "--interface", "lo", "--service", svc)
	found := browse.stdout.waitEvent(t, "desk's advert", func(e map[string]any) bool { return e["event"] == "found" && e["name"] == "desk" })
	if txt, _ := found["txt"].(map[string]any); txt["pair"] != "offer" || strings.Contains(fmt.Sprint(found), strings.ReplaceAll(code, "-", "")) {
		t.Fatalf("desk's advert %v: want pair=offer and no code", found)
	}
	browse.cancel()
	browse.wait(t)
	out, _, err := run(t, nil, append([]string{"pair", code, "--json", "--interface", "lo", "--service", svc, "--name", "laptop"}, b.args()...)...)
	if err != nil {
		t.Fatalf("pair CODE: %v\n%s", err, out)
	}
	if err := shows.wait(t); err != nil {
		t.Fatalf("pair: %v", err)
	}
	fa, fb := a.fingerprint(t), b.fingerprint(t)
	got := out.waitEvent(t, "paired", isEvent("paired"))
	if got["name"] != "desk" || got["fingerprint"] != fa {
		t.Fatalf("the typing side paired %v, want desk %s", got, fa)
	}
	got = shows.stdout.waitEvent(t, "paired", isEvent("paired"))
	if got["name"] != "laptop" || got["fingerprint"] != fb {
		t.Fatalf("the showing side paired %v, want laptop %s", got, fb)
	}
	if strings.Contains(shows.stderr.String()+out.String(), strings.ReplaceAll(code, "-", "")) {
		t.Fatal("the code's digits appear in output other than the code event")
	}
	for _, c := range []struct {
		file, fp, name string
	}{{a.known, fb, "laptop"}, {b.known, fa, "desk"}} {
		data, err := os.ReadFile(c.file)
		if err != nil || string(data) != c.fp+" "+c.name+"\n" {
			t.Fatalf("%s: %q, %v; want the peer %s %s", c.file, data, err, c.fp, c.name)
		}
	}

	// id lists the known peer, and forgets it.
	out, _, err = run(t, nil, "id", "--json", "--known-peers", a.known)
	if err != nil {
		t.Fatal(err)
	}
	if e := out.waitEvent(t, "known_peer", isEvent("known_peer")); e["fingerprint"] != fb || e["name"] != "laptop" {
		t.Fatalf("id lists %v", e)
	}
	if _, _, err := run(t, nil, "id", "--known-peers", a.known, "--forget", fb); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(a.known); len(data) != 0 {
		t.Fatalf("after --forget: %q", data)
	}
	if _, _, err := run(t, nil, "id", "--known-peers", a.known, "--forget", fb); err == nil {
		t.Fatal("forgetting an unknown peer succeeded")
	}
}

// TestPairWrongCode: the typing side fails at once with the mismatch; the
// showing side reports it and waits; after --attempts it exits 1, and the
// right code is refused as used up.
func TestPairWrongCode(t *testing.T) {
	svc := service(t)
	a, b := newPairFiles(t), newPairFiles(t)
	shows := start(t, nil, append([]string{"pair", "--json", "--interface", "lo", "--service", svc, "--name", "desk", "--attempts", "2"}, a.args()...)...)
	codeEv := shows.stdout.waitEvent(t, "the code", isEvent("code"))
	code := codeEv["code"].(string)
	ready := shows.stdout.waitEvent(t, "ready", isEvent("ready"))
	addr := "127.0.0.1:" + strings.TrimPrefix(ready["addr"].(string)[strings.LastIndex(ready["addr"].(string), ":"):], ":")
	wrong := []byte(code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	for i := 0; i < 2; i++ {
		out, _, err := run(t, nil, append([]string{"pair", string(wrong), "--json", "--interface", "lo", "--service", svc, "--to", addr}, b.args()...)...)
		if err == nil || !strings.Contains(err.Error(), "pairing code mismatch") {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
		if e := out.waitEvent(t, "pair_failed", isEvent("pair_failed")); !strings.Contains(e["reason"].(string), "pairing code mismatch") {
			t.Fatalf("pair_failed %v", e)
		}
	}
	if err := shows.wait(t); err == nil || !strings.Contains(err.Error(), "used up") {
		t.Fatalf("showing side after 2 mismatches: %v", err)
	}
	if e := shows.stdout.waitEvent(t, "pair_failed", isEvent("pair_failed")); !strings.Contains(e["reason"].(string), "mismatch") {
		t.Fatalf("showing side's first pair_failed: %v", e)
	}
	for _, f := range []string{a.known, b.known} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Fatalf("%s written after failed pairings", f)
		}
	}
}

// TestSendReceiveWithCode: send --code shows a code, receive --code CODE
// takes it; the file arrives with no key and no identity prepared.
func TestSendReceiveWithCode(t *testing.T) {
	svc := service(t)
	dir, src := t.TempDir(), filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(src, []byte("paired on the fly\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	send := start(t, nil, "send", src, "--code", "--json", "--interface", "lo", "--service", svc)
	code := send.stdout.waitEvent(t, "the code", isEvent("code"))["code"].(string)
	recv := start(t, nil, "receive", "--code", code, "--yes", "--count", "1", "--json", "--interface", "lo", "--service", svc, "--name", "inbox", "--dir", dir)
	if err := send.wait(t); err != nil {
		t.Fatalf("send --code: %v\n%s", err, send.stdout)
	}
	if err := recv.wait(t); err != nil {
		t.Fatalf("receive --code: %v", err)
	}
	if e := send.stdout.waitEvent(t, "paired", isEvent("paired")); e["name"] != "inbox" {
		t.Fatalf("send paired %v", e)
	}
	recv.stdout.waitEvent(t, "paired", isEvent("paired"))
	if data, err := os.ReadFile(filepath.Join(dir, "note.txt")); err != nil || string(data) != "paired on the fly\n" {
		t.Fatalf("received %q, %v", data, err)
	}
}

// TestPairQRCode: the terminal QR code decodes to the code and the
// fingerprint.
func TestPairQRCode(t *testing.T) {
	code, _ := security.ParsePairingCode("123-456")
	id, err := security.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	want := pairURI(code, id.Fingerprint())
	text := qrText(want)
	// Back to modules: each character is two rows; a block is light.
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	w := len([]rune(lines[0]))
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, w*scale, 2*len(lines)*scale))
	for row, l := range lines {
		for x, r := range []rune(l) {
			top := r == '█' || r == '▀'
			bottom := r == '█' || r == '▄'
			for i, light := range []bool{top, bottom} {
				c := color.Gray{0}
				if light {
					c = color.Gray{255}
				}
				for dy := 0; dy < scale; dy++ {
					for dx := 0; dx < scale; dx++ {
						img.SetGray(x*scale+dx, (2*row+i)*scale+dy, c)
					}
				}
			}
		}
	}
	got, err := qr.Decode(img)
	if err != nil || got != want {
		t.Fatalf("the QR code decodes to %q, %v; want %q", got, err, want)
	}
}

// TestPairExpires: a code not typed within --lifetime dies; pair says so
// and exits 1.
func TestPairExpires(t *testing.T) {
	a := newPairFiles(t)
	out, _, err := run(t, nil, append([]string{"pair", "--json", "--interface", "lo", "--service", service(t), "--lifetime", "50ms"}, a.args()...)...)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("pair past its lifetime: %v", err)
	}
	if e := out.waitEvent(t, "pair_failed", isEvent("pair_failed")); !strings.Contains(e["reason"].(string), "pairing code expired") {
		t.Fatalf("pair_failed %v", e)
	}
}
