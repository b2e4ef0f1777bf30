package resource

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// What a receive directory holds of transfers that did not finish is
// bounded: at most AcceptOptions.MaxPartials partial files of at most
// MaxPartialBytes in all, none older than MaxPartialAge. The partial
// files of a directory are listed once per process (a walk, at its first
// transfer) and then tracked as transfers create, grow and remove them,
// so that a flood of offers costs no walk each.

// partialDir tracks the partial files under one target directory.
type partialDir struct {
	abs string

	mu     sync.Mutex // guards loaded, files and seq
	loaded bool
	files  map[string]partialFile // by '/'-separated path in the directory
	seq    uint64                 // counts track calls
}

type partialFile struct {
	size int64
	mod  time.Time
	seq  uint64 // when this process last tracked it; 0 if it only listed it
}

// removedPartial is a partial file pruning deleted.
type removedPartial struct {
	path   string // local path: the directory joined with the name
	size   int64
	reason string
}

var partialDirs struct {
	sync.Mutex
	m map[string]*partialDir
}

// partialsOf returns the tracker of the directory whose absolute path is abs.
func partialsOf(abs string) *partialDir {
	partialDirs.Lock()
	defer partialDirs.Unlock()
	if d := partialDirs.m[abs]; d != nil {
		return d
	}
	if partialDirs.m == nil {
		partialDirs.m = make(map[string]*partialDir)
	}
	d := &partialDir{abs: abs, files: make(map[string]partialFile)}
	partialDirs.m[abs] = d
	return d
}

// loadLocked lists the partial files under root, once, or again with
// rescan (files another process left meanwhile). Errors (an unreadable
// subdirectory) leave out what could not be read.
func (d *partialDir) loadLocked(root *os.Root, rescan bool) {
	if d.loaded && !rescan {
		return
	}
	d.loaded = true
	old := d.files
	d.files = make(map[string]partialFile, len(old))
	_ = fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if e != nil && e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), partialPrefix) {
			return nil
		}
		if info, err := e.Info(); err == nil {
			d.files[p] = partialFile{size: info.Size(), mod: info.ModTime(), seq: old[p].seq}
		}
		return nil
	})
}

// track records the partial file p as it is now: its size and time, or
// its absence.
func (d *partialDir) track(root *os.Root, p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trackLocked(root, p)
}

func (d *partialDir) trackLocked(root *os.Root, p string) {
	fi, err := root.Lstat(filepath.FromSlash(p))
	if err != nil || !fi.Mode().IsRegular() {
		delete(d.files, p)
		return
	}
	d.seq++
	d.files[p] = partialFile{size: fi.Size(), mod: fi.ModTime(), seq: d.seq}
}

// prune deletes partial files that no transfer is writing: those last
// written more than o.MaxPartialAge ago, then the oldest until at most
// o.MaxPartials files of at most o.MaxPartialBytes in all are left. It
// lists the directory the first time, and again with rescan. It returns
// what it deleted.
func (d *partialDir) prune(root *os.Root, o AcceptOptions, rescan bool) []removedPartial {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loadLocked(root, rescan)
	return d.pruneLocked(root, o, "")
}

// finish ends a transfer's hold on its partial file p (busy as key): it
// records the file as the transfer leaves it, releases it and prunes,
// keeping p if anything (it is the newest attempt). All of it under d.mu,
// so that transfers ending together leave no more than the bounds.
func (d *partialDir) finish(root *os.Root, o AcceptOptions, p, key string) []removedPartial {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loadLocked(root, false)
	d.trackLocked(root, p)
	release(key)
	if _, ok := d.files[p]; !ok {
		return nil // placed or deleted: nothing was added
	}
	return d.pruneLocked(root, o, p)
}

// pruneLocked is prune; keep, if not "", is deleted last and never for
// its age.
func (d *partialDir) pruneLocked(root *os.Root, o AcceptOptions, keep string) []removedPartial {
	type entry struct {
		p string
		partialFile
	}
	var idle []entry
	for p, f := range d.files {
		if !isBusy(busyKey(d.abs, p)) {
			idle = append(idle, entry{p, f})
		}
	}
	slices.SortFunc(idle, func(a, b entry) int {
		// File times may be as coarse as a clock tick: files written in
		// one tick are ordered by when this process last wrote them.
		return cmp.Or(cmpBool(a.p == keep, b.p == keep), a.mod.Compare(b.mod), cmp.Compare(a.seq, b.seq), strings.Compare(a.p, b.p))
	})
	var removed []removedPartial
	remove := func(e entry, reason string) {
		key := busyKey(d.abs, e.p)
		if !claim(key) {
			return // a transfer took it meanwhile
		}
		defer release(key)
		if err := root.Remove(filepath.FromSlash(e.p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return // kept, and still counted: the next prune tries again
		}
		delete(d.files, e.p)
		removed = append(removed, removedPartial{path: filepath.Join(d.abs, filepath.FromSlash(e.p)), size: e.size, reason: reason})
	}
	cutoff := time.Now().Add(-o.MaxPartialAge)
	n, total := 0, int64(0)
	kept := idle[:0]
	for _, e := range idle {
		if e.p != keep && e.mod.Before(cutoff) {
			remove(e, fmt.Sprintf("not written for more than %v (MaxPartialAge)", o.MaxPartialAge))
			continue
		}
		kept = append(kept, e)
		n++
		total += e.size
	}
	for _, e := range kept {
		if n <= o.MaxPartials && total <= o.MaxPartialBytes {
			break
		}
		reason := fmt.Sprintf("more than %d partial files kept (MaxPartials); this was the oldest", o.MaxPartials)
		if n <= o.MaxPartials {
			reason = fmt.Sprintf("partial files held more than %d bytes (MaxPartialBytes); this was the oldest", o.MaxPartialBytes)
		}
		remove(e, reason)
		n--
		total -= e.size
	}
	return removed
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// forget drops the record of the partial file p, which was deleted or
// renamed into place.
func (d *partialDir) forget(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.files, p)
}

func isBusy(key string) bool {
	busy.Lock()
	defer busy.Unlock()
	return busy.m[key]
}

// PrunePartials applies the bounds of opts (nil: the defaults) on partial
// files to dir now, as [Incoming.Accept] does when a transfer starts, and
// returns how many files it deleted; opts.PartialRemoved is told of each.
// Accept lists a directory's partial files once per process and then
// tracks the ones it writes; PrunePartials lists them again, so it also
// sees files another process left. A receiver calls it when it starts,
// and may call it now and then.
func PrunePartials(dir string, opts *AcceptOptions) (int, error) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	o, err := o.withDefaults()
	if err != nil {
		return 0, err
	}
	abs, root, err := openDir(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	removed := partialsOf(abs).prune(root, o, true)
	tellRemoved(o, removed)
	return len(removed), nil
}

func tellRemoved(o AcceptOptions, removed []removedPartial) {
	if o.PartialRemoved == nil {
		return
	}
	for _, r := range removed {
		o.PartialRemoved(r.path, r.size, r.reason)
	}
}

// CheckWritable reports whether a file can be created in dir, by creating
// and deleting one; the error names the file system's fault ("read-only
// file system", "permission denied"). A receiver calls it when it starts,
// so that an unusable directory fails there and not at every offer.
func CheckWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".nearnet-write-check-*")
	if err != nil {
		return fmt.Errorf("nearnet: cannot write in %s: %w", dir, errnoOf(err))
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("nearnet: cannot delete files in %s: %w", dir, errnoOf(err))
	}
	return nil
}

// errnoOf returns the system's error inside err (a *PathError's), so that
// a message names the directory once.
func errnoOf(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
