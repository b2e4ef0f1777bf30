package resource

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var safeNames = []string{
	"a.txt",
	"album/2024/a.jpg",
	".gitignore",
	"x..y",
	" leading space",
	"日本語.txt",
	"emoji 👍🏽.png",
	"CONSOLE.txt", // not a device: the base is longer
	"COM10",
	"LPT",
	"nul-file",
	"a b/c d",
	strings.Repeat("a", MaxComponentLen),
	strings.Repeat("d/", 100) + "f",
}

var hostileNames = []struct{ name, why string }{
	{"", "empty"},
	{".", "dot"},
	{"..", "dot dot"},
	{"../x", "parent"},
	{"a/../../b", "parent inside"},
	{"a/./b", "dot inside"},
	{"/abs", "absolute"},
	{"/etc/passwd", "absolute"},
	{"dir/", "trailing slash"},
	{"a//b", "empty component"},
	{`a\b`, "backslash"},
	{`..\x`, "backslash parent"},
	{`C:\x`, "drive"},
	{"C:x", "drive relative"},
	{"file.txt:stream", "NTFS stream"},
	{"a\x00b", "NUL"},
	{"a\nb", "newline"},
	{"a\x1b[31mred", "escape"},
	{"a\x7f", "DEL"},
	{"a\u0085b", "C1 control"},
	{"photo\u202egpj.exe", "bidi override"},
	{"a*b", "star"},
	{"a?b", "question"},
	{`a"b`, "quote"},
	{"a<b>", "angle"},
	{"a|b", "pipe"},
	{"CON", "device"},
	{"con", "device lower"},
	{"con.txt", "device with extension"},
	{"NUL.tar.gz", "device with extensions"},
	{"dir/aux", "device in a directory"},
	{"COM1", "COM1"},
	{"com0.log", "COM0"},
	{"LPT9", "LPT9"},
	{"COM\u00b9", "superscript"},
	{"CONIN$", "console"},
	{"CON .txt", "device with space"},
	{"trailing.", "trailing dot"},
	{"trailing ", "trailing space"},
	{"dir./x", "trailing dot in a directory"},
	{"\xff\xfe", "invalid UTF-8"},
	{strings.Repeat("a", MaxComponentLen+1), "long component"},
	{strings.Repeat("abcdefgh/", 120) + "f", "long path"},
	{partialPrefix + "0123", "partial prefix"},
	{"d/" + partialPrefix + "x", "partial prefix in a directory"},
}

func TestSafeName(t *testing.T) {
	for _, n := range safeNames {
		got, err := SafeName(n)
		if err != nil {
			t.Errorf("SafeName(%q): %v", n, err)
			continue
		}
		if got != filepath.FromSlash(n) || !filepath.IsLocal(got) {
			t.Errorf("SafeName(%q) = %q, want the local form of the name", n, got)
		}
	}
	for _, c := range hostileNames {
		got, err := SafeName(c.name)
		var ne *NameError
		if !errors.As(err, &ne) || ne.Name != c.name || ne.Reason == "" || got != "" {
			t.Errorf("SafeName(%q) [%s] = %q, %v; want a NameError", c.name, c.why, got, err)
		}
	}
}

// TestHostileNamesOnTheWire sends each hostile name past Send's own check
// (as a foreign sender would) and checks that the receiver refuses it,
// tells the sender, and writes nothing anywhere.
func TestHostileNamesOnTheWire(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "inbox")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range hostileNames {
		if !utf8.ValidString(c.name) {
			// JSON carries no invalid UTF-8: decoders turn it into U+FFFD,
			// which is an ordinary character.
			continue
		}
		s, r := net.Pipe()
		answer := make(chan reply, 1)
		go func() {
			defer s.Close()
			size := int64(1)
			if err := writeFrame(s, offerMsg{V: version, Name: c.name, Size: &size}); err != nil {
				answer <- reply{}
				return
			}
			b, err := readFrame(s)
			if err != nil {
				answer <- reply{}
				return
			}
			rep, _ := decodeReply(b, size)
			answer <- rep
		}()
		in, err := ReadOffer(ctx, r)
		r.Close()
		rep := <-answer
		var ne *NameError
		if in != nil || !errors.As(err, &ne) {
			t.Errorf("ReadOffer(%q): %v, %v; want a NameError", c.name, in, err)
		}
		if rep.accept || rep.code != codeUnsafeName || !strings.HasPrefix(rep.reason, "unsafe name: ") {
			t.Errorf("%q: sender got %+v, want a rejection with code %q", c.name, rep, codeUnsafeName)
		}
	}
	if got := listDir(t, base); !slices.Equal(got, []string{"inbox"}) {
		t.Errorf("after hostile offers %s holds %q", base, got)
	}
}

// TestSymlinkEscape: symbolic links inside the target directory that point
// outside it are never followed out, and never replaced without Overwrite.
func TestSymlinkEscape(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	base := t.TempDir()
	dir, outside := filepath.Join(base, "inbox"), filepath.Join(base, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(outside, filepath.Join(dir, "out")))      // absolute link to a directory outside
	must(os.Symlink("../outside", filepath.Join(dir, "rel"))) // relative link outside
	must(os.Symlink(secret, filepath.Join(dir, "secret")))    // link to a file outside
	content := []byte("payload")

	for _, c := range []struct {
		name string
		opts *AcceptOptions
	}{
		{"out/x.txt", nil},
		{"rel/x.txt", nil},
		{"out/new/x.txt", nil},
		{"rel/secret", &AcceptOptions{Overwrite: true}},
		{"secret", nil},
		{"out", nil},
	} {
		s, r := net.Pipe()
		out := transfer(t, s, r, Offer{Name: c.name, Size: int64(len(content))}, bytes.NewReader(content), dir, c.opts)
		var rej *RejectedError
		if out.recvErr == nil || !errors.As(out.sendErr, &rej) {
			t.Errorf("%q: receive %v, send %v; want both to fail, the sender by rejection", c.name, out.recvErr, out.sendErr)
		}
	}

	// With Overwrite, a link of the offered name is replaced by the file;
	// what it pointed to is not touched.
	s, r := net.Pipe()
	out := transfer(t, s, r, Offer{Name: "secret", Size: int64(len(content))}, bytes.NewReader(content), dir, &AcceptOptions{Overwrite: true})
	if out.sendErr != nil || out.recvErr != nil {
		t.Fatalf("overwrite link: send %v, receive %v", out.sendErr, out.recvErr)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "secret")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("after Overwrite, secret is %v (%v), want a regular file", fi, err)
	}
	checkFile(t, filepath.Join(dir, "secret"), content)

	checkFile(t, secret, []byte("keep"))
	if got := listDir(t, outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside holds %q, want only what it had", got)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"out", "rel", "secret"}) {
		t.Errorf("inbox holds %q", got)
	}
}

// TestNormalizedNames: a precomposed and a decomposed "é.txt" are one
// name. The first is saved under its NFC form; the second finds it taken,
// and a partial file left by one spelling is resumed by the other.
func TestNormalizedNames(t *testing.T) {
	const composed, decomposed = "\u00e9.txt", "e\u0301.txt"
	if NormalizeName(decomposed) != composed {
		t.Fatalf("NormalizeName(%q) = %q, want %q", decomposed, NormalizeName(decomposed), composed)
	}
	if p, err := SafeName("o\u0301/" + decomposed); err != nil || p != filepath.FromSlash("\u00f3/"+composed) {
		t.Errorf("SafeName of a decomposed name = %q, %v; want the NFC form", p, err)
	}
	content := randomBytes(3<<20, 9)
	for _, order := range [][2]string{{decomposed, composed}, {composed, decomposed}} {
		t.Run(order[0]+" then "+order[1], func(t *testing.T) {
			dir := t.TempDir()
			s, r := transports[1].pair(t)
			out := transfer(t, s, r, Offer{Name: order[0], Size: int64(len(content))}, bytes.NewReader(content), dir, nil)
			if out.sendErr != nil || out.recvErr != nil {
				t.Fatalf("first: send %v, receive %v", out.sendErr, out.recvErr)
			}
			if out.incoming.Offer.Name != composed || out.rcv.Name != composed {
				t.Errorf("offer %q saved as %q; want both %q", out.incoming.Offer.Name, out.rcv.Name, composed)
			}
			s, r = transports[1].pair(t)
			out = transfer(t, s, r, Offer{Name: order[1], Size: int64(len(content))}, bytes.NewReader(content), dir, nil)
			if !errors.Is(out.sendErr, ErrExists) || !errors.Is(out.recvErr, ErrExists) {
				t.Errorf("second spelling: send %v, receive %v; want ErrExists", out.sendErr, out.recvErr)
			}
			if got := listDir(t, dir); !slices.Equal(got, []string{composed}) {
				t.Errorf("directory holds %q, want only %q", got, composed)
			}
		})
	}
	t.Run("resume", func(t *testing.T) {
		dir := t.TempDir()
		writePartial(t, dir, "", composed, int64(len(content)), content[:1<<20])
		s, r := transports[1].pair(t)
		out := transfer(t, s, r, Offer{Name: decomposed, Size: int64(len(content))}, sourceFile(t, content), dir, nil)
		if out.sendErr != nil || out.recvErr != nil {
			t.Fatalf("send %v, receive %v", out.sendErr, out.recvErr)
		}
		if out.sent.Resumed != 1<<20 {
			t.Errorf("resumed %d bytes, want %d: the partial file of the other spelling was not found", out.sent.Resumed, 1<<20)
		}
		checkFile(t, filepath.Join(dir, composed), content)
	})
}
