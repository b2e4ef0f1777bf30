package security

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func testFingerprint(i int) Fingerprint {
	var fp Fingerprint
	fp[0], fp[1] = byte(i>>8), byte(i)
	fp[31] = 0xee
	return fp
}

func TestKnownPeersAddAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config", "known_peers")
	kp, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	a, b := testFingerprint(1), testFingerprint(2)
	if kp.Contains(a) {
		t.Fatal("empty set contains a fingerprint")
	}
	if err := kp.Add(a, "  Alice's phone  "); err != nil {
		t.Fatal(err)
	}
	if err := kp.Add(b, ""); err != nil {
		t.Fatal(err)
	}
	if err := kp.Add(a, "renamed"); err != nil {
		t.Fatal(err)
	}
	if name, ok := kp.Name(a); !ok || name != "Alice's phone" {
		t.Fatalf("Name = %q, %v", name, ok)
	}
	data, _ := os.ReadFile(path)
	if want := a.String() + " Alice's phone\n" + b.String() + "\n"; string(data) != want {
		t.Fatalf("file = %q, want %q", data, want)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %04o, want 0600", fi.Mode().Perm())
	}
	again, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := again.Name(a); !ok || name != "Alice's phone" || !again.Contains(b) || again.Contains(testFingerprint(3)) {
		t.Fatalf("reloaded set wrong: %q %v %v", name, ok, again.Contains(b))
	}
}

func TestKnownPeersFileFormat(t *testing.T) {
	a, b, c := testFingerprint(1), testFingerprint(2), testFingerprint(3)
	upperColons := strings.ToUpper(strings.Join(splitPairs(c.String()[7:]), ":"))
	content := "# trusted peers\n\n  " + a.String() + "\tlaptop  in the hall \r\n" +
		"   # indented comment\n" + b.String()[7:] + "\n" + upperColons + " desk\n" +
		a.String() + " duplicate" // no final newline
	path := filepath.Join(t.TempDir(), "known_peers")
	os.WriteFile(path, []byte(content), 0o600)
	kp, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	for fp, want := range map[Fingerprint]string{a: "laptop  in the hall", b: "", c: "desk"} {
		if name, ok := kp.Name(fp); !ok || name != want {
			t.Errorf("Name(%v) = %q, %v; want %q", fp, name, ok, want)
		}
	}
	d := testFingerprint(4)
	if err := kp.Add(d, "new"); err != nil {
		t.Fatal(err)
	}
	if again, err := LoadKnownPeers(path); err != nil || !again.Contains(d) || !again.Contains(a) {
		t.Fatalf("after appending to a file without a final newline: %v", err)
	}
}

func splitPairs(s string) []string {
	var out []string
	for i := 0; i < len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return out
}

func TestKnownPeersRejects(t *testing.T) {
	dir := t.TempDir()
	for i, tt := range []struct{ content, want string }{
		{"# ok\n" + testFingerprint(1).String() + " a\nnot-a-fingerprint name\n", ":3: invalid fingerprint \"not-a-fingerprint\""},
		{testFingerprint(1).String() + " bell\a\n", ":1: invalid known-peers entry: name contains control character U+0007"},
		{testFingerprint(1).String() + " \xff\n", ":1: invalid known-peers entry: name is not valid UTF-8"},
		{testFingerprint(1).String()[:40] + "\n", ":1: invalid fingerprint"},
	} {
		path := filepath.Join(dir, fmt.Sprint(i))
		os.WriteFile(path, []byte(tt.content), 0o600)
		_, err := LoadKnownPeers(path)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: err = %v, want a *ParseError", tt.content, err)
			continue
		}
		mustContain(t, err.Error(), path+tt.want)
	}

	kp, _ := LoadKnownPeers(filepath.Join(dir, "new"))
	if err := kp.Add(testFingerprint(1), "two\nlines"); err == nil {
		t.Error("Add accepted a name with a newline")
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a rejected Add created the file")
	}

	if runtime.GOOS != "windows" {
		path := filepath.Join(dir, "writable")
		os.WriteFile(path, nil, 0o600)
		os.Chmod(path, 0o620)
		_, err := LoadKnownPeers(path)
		mustContain(t, errString(err), path, "0620", "chmod 600")
		os.Chmod(path, 0o644) // readable by others is fine: fingerprints are public
		if _, err := LoadKnownPeers(path); err != nil {
			t.Error(err)
		}
	}
}

func TestKnownPeersConcurrentAdd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_peers")
	kp, _ := LoadKnownPeers(path)
	var wg sync.WaitGroup
	for i := range 50 {
		for range 3 { // the same peer from several handshakes at once
			wg.Go(func() {
				if err := kp.Add(testFingerprint(i), fmt.Sprint("peer ", i)); err != nil {
					t.Error(err)
				}
				kp.Contains(testFingerprint(i))
			})
		}
	}
	wg.Wait()
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("file has %d lines, want 50", len(lines))
	}
	again, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if name, _ := again.Name(testFingerprint(i)); name != fmt.Sprint("peer ", i) {
			t.Fatalf("peer %d: name %q", i, name)
		}
	}
}

func FuzzLoadKnownPeers(f *testing.F) {
	var seed strings.Builder
	seed.WriteString("# comment\n\n")
	for i, name := range []string{"alice", "", "bob's  laptop", "ünïcode"} {
		seed.WriteString(formatKnownPeer(testFingerprint(i), name))
	}
	f.Add([]byte(seed.String()))
	f.Add([]byte(formatKnownPeer(testFingerprint(9), "x")))
	f.Add([]byte("3B:0C:9A:4F:5E:6D:7C:8B:9A:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:E1\tdesk\r\n"))
	f.Add([]byte("sha256:zz name\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := parseKnownPeers("fuzz", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a *ParseError with a line", err)
			}
			return
		}
		// What parses must survive being written back by Add's encoder.
		var out strings.Builder
		for fp, name := range names {
			out.WriteString(formatKnownPeer(fp, name))
		}
		back, err := parseKnownPeers("fuzz", []byte(out.String()))
		if err != nil {
			t.Fatalf("re-encoded entries do not parse: %v\n%q", err, out.String())
		}
		if len(back) != len(names) {
			t.Fatalf("%d entries became %d", len(names), len(back))
		}
		for fp, name := range names {
			if back[fp] != name {
				t.Fatalf("name %q became %q", name, back[fp])
			}
		}
	})
}

// TestKnownPeersReplaceRemoveList: Replace rewrites one peer's entry and
// keeps the other lines (comments too, and entries another process added),
// Remove drops it, List orders by name.
func TestKnownPeersReplaceRemoveList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_peers")
	a, b := Fingerprint{1}, Fingerprint{2}
	if err := os.WriteFile(path, []byte("# mine\n"+a.String()+" alpha\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kp, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	// Another process adds b meanwhile.
	other, _ := LoadKnownPeers(path)
	if err := other.Add(b, "beta"); err != nil {
		t.Fatal(err)
	}
	if err := kp.Replace(a, "zeta"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if want := "# mine\n" + b.String() + " beta\n" + a.String() + " zeta\n"; string(data) != want {
		t.Fatalf("after Replace:\n%s\nwant:\n%s", data, want)
	}
	if got := kp.List(); len(got) != 2 || got[0] != (KnownPeer{b, "beta"}) || got[1] != (KnownPeer{a, "zeta"}) {
		t.Fatalf("List: %v", got)
	}
	if had, err := kp.Remove(a); err != nil || !had {
		t.Fatalf("Remove: %v %v", had, err)
	}
	if kp.Contains(a) {
		t.Fatal("removed peer still trusted")
	}
	if had, err := kp.Remove(a); err != nil || had {
		t.Fatalf("Remove again: %v %v", had, err)
	}
	data, _ = os.ReadFile(path)
	if want := "# mine\n" + b.String() + " beta\n"; string(data) != want {
		t.Fatalf("after Remove:\n%s\nwant:\n%s", data, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}
