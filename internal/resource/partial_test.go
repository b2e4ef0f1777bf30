package resource

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestRemovePartials(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "album", "2024"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	write := func(name string, mtime time.Time) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	oldTop := partialName("k", "a.bin", 10)
	oldDeep := partialName("k", "album/2024/b.jpg", 10)
	fresh := partialName("k", "c.bin", 10)
	busyOne := partialName("k", "d.bin", 10)
	write(oldTop, old)
	write(oldDeep, old)
	write(fresh, time.Now())
	write(busyOne, old)
	write("keep.txt", old)
	write("album/.nearnet-other", old)

	abs, _ := filepath.Abs(dir)
	key := busyKey(abs, busyOne)
	if !claim(key) {
		t.Fatal("claim failed")
	}
	n, err := RemovePartials(dir, 24*time.Hour)
	release(key)
	if err != nil || n != 2 {
		t.Errorf("RemovePartials = %d, %v; want 2, nil", n, err)
	}
	want := []string{"album", "album/.nearnet-other", "album/2024", busyOne, fresh, "keep.txt"}
	slices.Sort(want)
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
}

// TestPartialNeverAliased: a partial file that is a link to another file
// (planted, or a hard link left by a failed cleanup) never gets that
// file changed.
func TestPartialNeverAliased(t *testing.T) {
	content := randomBytes(1<<20, 8)
	size := int64(len(content))
	for _, kind := range []string{"hard", "symbolic"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			other := filepath.Join(dir, "other.doc")
			precious := randomBytes(512<<10, 9)
			if err := os.WriteFile(other, precious, 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, partialName("", "f.bin", size))
			link := os.Link
			if kind == "symbolic" {
				link = func(old, new string) error { return os.Symlink("other.doc", new) }
			}
			if err := link(other, p); err != nil {
				t.Skipf("cannot make a %s link here: %v", kind, err)
			}
			s, r := transports[0].pair(t)
			out := transfer(t, s, r, Offer{Name: "f.bin", Size: size}, sourceFile(t, content), dir, nil)
			if out.sendErr != nil || out.recvErr != nil {
				t.Fatalf("send %v, receive %v", out.sendErr, out.recvErr)
			}
			checkFile(t, out.rcv.Path, content)
			checkFile(t, other, precious)
			if got := listDir(t, dir); !slices.Equal(got, []string{"f.bin", "other.doc"}) {
				t.Errorf("directory holds %q", got)
			}
		})
	}
}
