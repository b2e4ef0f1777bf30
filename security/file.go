package security

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// maxFileSize bounds what is read from identity, key and known-peers files,
// so a wrong path (a device, a huge log) fails clearly instead of eating memory.
const maxFileSize = 16 << 20

// readPrivateFile reads a file holding a secret, refusing it if other users
// could read it too. Windows has no Unix permission bits, so the check is
// skipped there.
func readPrivateFile(path, what string) ([]byte, error) {
	return readFile(path, what, 0o077, "could read it")
}

// readFile reads path after checking that none of the forbidden permission
// bits are set; consequence says what those bits would allow others to do.
func readFile(path, what string, forbidden fs.FileMode, consequence string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("security: reading %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("security: reading %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("security: %s %s is not a regular file", what, path)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("security: %s %s is %d bytes, more than the %d allowed", what, path, fi.Size(), maxFileSize)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&forbidden != 0 {
		return nil, fmt.Errorf("security: %s %s has mode %04o, so other users %s: run chmod 600 %s",
			what, path, perm, consequence, path)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("security: reading %s: %w", what, err)
	}
	return data, nil
}

// createFile writes data to a new file at path with mode 0600, creating the
// parent directory with mode 0700 if needed. The data is written to a
// temporary file and then linked into place, so a crash never leaves a
// partial file at path and an existing file is never replaced: if path
// exists, createFile returns an error satisfying errors.Is(err, fs.ErrExist).
func createFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link fails if path exists, unlike Rename, which would replace it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// Some file systems have no hard links; fall back to Rename,
		// accepting a small window in which a concurrent creator loses.
		if _, serr := os.Lstat(path); serr == nil {
			return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new directory entry durable. Errors are ignored: not every
// system can sync a directory, and the file itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
