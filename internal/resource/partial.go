package resource

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// partialPrefix starts the name of every partial file. [SafeName] refuses
// names that start with it, so a sender cannot name a partial file.
const partialPrefix = ".nearnet-partial-"

// partialName is the partial file's name, in the directory of the final
// file (so that the rename stays within one file system), for the
// resource name of size bytes from the sender that key identifies.
func partialName(key, name string, size int64) string {
	h := sha256.New()
	for _, s := range []string{"nearnet-partial-v1", key, name, strconv.FormatInt(size, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	dir := path.Dir(name)
	return path.Join(dir, partialPrefix+hex.EncodeToString(sum[:16]))
}

// busy holds the partial files being written in this process, as
// busyKey(dir, partial), so two transfers never write one partial file.
var busy struct {
	sync.Mutex
	m map[string]bool
}

func busyKey(absDir, partial string) string { return absDir + "\x00" + partial }

func claim(key string) bool {
	busy.Lock()
	defer busy.Unlock()
	if busy.m[key] {
		return false
	}
	if busy.m == nil {
		busy.m = make(map[string]bool)
	}
	busy.m[key] = true
	return true
}

func release(key string) {
	busy.Lock()
	defer busy.Unlock()
	delete(busy.m, key)
}

// RemovePartials deletes the partial files under dir (at any depth) that
// no transfer in this process is writing and that were last written more
// than olderThan ago, and returns how many it deleted. Partial files are
// what lets an interrupted transfer resume; call this now and then (say
// with a week) so that abandoned ones do not pile up. It does not follow
// symbolic links. It goes on past errors and returns the first.
func RemovePartials(dir string, olderThan time.Duration) (int, error) {
	abs, root, err := openDir(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	walkErr := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			keep(err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), partialPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			keep(err)
			return nil
		}
		if !info.ModTime().Before(cutoff) {
			return nil
		}
		key := busyKey(abs, p)
		if !claim(key) {
			return nil
		}
		defer release(key)
		if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			keep(err)
			return nil
		}
		partialsOf(abs).forget(p)
		removed++
		return nil
	})
	if walkErr != nil {
		keep(walkErr)
	}
	return removed, first
}

// openDir returns dir's absolute path and a root on it, for walking its
// partial files without following links out of it.
func openDir(dir string) (string, *os.Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", nil, err
	}
	return abs, root, nil
}
