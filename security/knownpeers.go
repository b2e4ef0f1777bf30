package security

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/nearnet/nearnet/internal/fsutil"
)

// KnownPeers is a set of trusted fingerprints with names, kept in a file in
// the manner of SSH's known_hosts. Each line is
//
//	<fingerprint> <name>
//
// where the fingerprint is in any form [ParseFingerprint] accepts and the
// name, which may contain spaces and may be empty, runs to the end of the
// line. Surrounding spaces are ignored; blank lines and lines starting with
// '#' are comments. If a fingerprint appears more than once, its first name
// is used. [KnownPeers.Add] writes fingerprints in the "sha256:" form.
//
// A KnownPeers is safe for concurrent use by multiple goroutines: a TOFU
// verifier may add peers from many handshakes at once. It does not see
// entries that other processes add to the file after it was loaded.
type KnownPeers struct {
	path string

	// mu guards names and appends to the file, so that concurrent Adds of
	// the same peer write one line and lines never interleave.
	mu    sync.Mutex
	names map[Fingerprint]string
}

// LoadKnownPeers reads the known-peers file at path. A missing file is an
// empty set; [KnownPeers.Add] creates it. A malformed line is a
// [*ParseError] naming the path and line, since ignoring it could silently
// distrust a peer. On Unix a file writable by group or others is refused:
// whoever can write it can make this node trust their peer.
func LoadKnownPeers(path string) (*KnownPeers, error) {
	kp := &KnownPeers{path: path, names: map[Fingerprint]string{}}
	data, err := readFile(path, "known-peers file", 0o022, "could add peers to it")
	if errors.Is(err, fs.ErrNotExist) {
		return kp, nil
	}
	if err != nil {
		return nil, err
	}
	if kp.names, err = parseKnownPeers(path, data); err != nil {
		return nil, err
	}
	return kp, nil
}

func parseKnownPeers(path string, data []byte) (map[Fingerprint]string, error) {
	names := map[Fingerprint]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		fpText, name := line, ""
		if j := strings.IndexAny(line, " \t"); j >= 0 {
			fpText, name = line[:j], strings.TrimSpace(line[j:])
		}
		fp, err := ParseFingerprint(fpText)
		if err != nil {
			pe := err.(*ParseError)
			pe.Path, pe.Line = path, i+1
			return nil, pe
		}
		if reason := checkName(name); reason != "" {
			return nil, &ParseError{What: "known-peers entry", Path: path, Line: i + 1, Reason: reason}
		}
		if _, dup := names[fp]; !dup {
			names[fp] = name
		}
	}
	return names, nil
}

// checkName keeps names to one printable line, so the file stays line-based
// and printing a name cannot send escape sequences to a terminal.
func checkName(name string) string {
	if !utf8.ValidString(name) {
		return "name is not valid UTF-8"
	}
	for _, r := range name {
		if unicode.IsControl(r) && r != '\t' {
			return fmt.Sprintf("name contains control character %U", r)
		}
	}
	return ""
}

func formatKnownPeer(fp Fingerprint, name string) string {
	if name == "" {
		return fp.String() + "\n"
	}
	return fp.String() + " " + name + "\n"
}

// Contains reports whether fp is in the set.
func (kp *KnownPeers) Contains(fp Fingerprint) bool {
	_, ok := kp.Name(fp)
	return ok
}

// Name returns the name recorded for fp, and whether fp is in the set.
func (kp *KnownPeers) Name(fp Fingerprint) (name string, ok bool) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	name, ok = kp.names[fp]
	return name, ok
}

// Add trusts fp under name (surrounding spaces removed) and appends it to the
// file, creating the file with mode 0600 (and its directory with mode 0700)
// if needed. The line is written and synced with one append, so a crash
// leaves at most a truncated last line, which [LoadKnownPeers] then reports.
// Adding a fingerprint already in the set does nothing, even if the name
// differs: edit the file to rename a peer.
func (kp *KnownPeers) Add(fp Fingerprint, name string) error {
	name = strings.TrimSpace(name)
	if reason := checkName(name); reason != "" {
		return &ParseError{What: "known-peers entry", Input: shorten(name), Reason: reason}
	}
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if _, ok := kp.names[fp]; ok {
		return nil
	}
	if err := appendLine(kp.path, formatKnownPeer(fp, name)); err != nil {
		return fmt.Errorf("security: adding %s to known-peers file: %w", fp, err)
	}
	kp.names[fp] = name
	return nil
}

func appendLine(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// A file edited by hand may lack a final newline; appending to it
	// would join two entries into one malformed line.
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if n := fi.Size(); n > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, n-1); err != nil {
			return err
		}
		if last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// KnownPeer is one entry of a [KnownPeers] set.
type KnownPeer struct {
	Fingerprint Fingerprint
	Name        string
}

// List returns the entries, ordered by name and then fingerprint.
func (kp *KnownPeers) List() []KnownPeer {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	out := make([]KnownPeer, 0, len(kp.names))
	for fp, name := range kp.names {
		out = append(out, KnownPeer{fp, name})
	}
	slices.SortFunc(out, func(a, b KnownPeer) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return bytes.Compare(a.Fingerprint[:], b.Fingerprint[:])
	})
	return out
}

// Replace trusts fp under name, replacing the entry fp already has (what
// pairing again with a peer does), and rewrites the file. Unlike
// [KnownPeers.Add] it reads the file afresh first, so that entries other
// processes added since it was loaded are kept.
func (kp *KnownPeers) Replace(fp Fingerprint, name string) error {
	name = strings.TrimSpace(name)
	if reason := checkName(name); reason != "" {
		return &ParseError{What: "known-peers entry", Input: shorten(name), Reason: reason}
	}
	return kp.rewrite(fp, &name)
}

// Remove stops trusting fp and rewrites the file without its lines. It
// reports whether fp was in the file.
func (kp *KnownPeers) Remove(fp Fingerprint) (bool, error) {
	kp.mu.Lock()
	_, had := kp.names[fp]
	kp.mu.Unlock()
	if err := kp.rewrite(fp, nil); err != nil {
		return false, err
	}
	return had, nil
}

// rewrite rewrites the file with every line for fp dropped and, if name is
// not nil, one entry for fp under *name added at the end. Comments and
// other entries are kept as they are. The new file replaces the old one
// by a rename, so a crash leaves one or the other.
func (kp *KnownPeers) rewrite(fp Fingerprint, name *string) error {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	data, err := readFile(kp.path, "known-peers file", 0o022, "could add peers to it")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := parseKnownPeers(kp.path, data); err != nil {
		return err
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && t[0] != '#' {
			fpText := t
			if j := strings.IndexAny(t, " \t"); j >= 0 {
				fpText = t[:j]
			}
			if f, err := ParseFingerprint(fpText); err == nil && f == fp {
				continue
			}
		}
		b.WriteString(line)
	}
	if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
		b.WriteString("\n")
	}
	if name != nil {
		b.WriteString(formatKnownPeer(fp, *name))
	}
	if err := fsutil.ReplaceFile(kp.path, []byte(b.String())); err != nil {
		return fmt.Errorf("security: rewriting known-peers file: %w", err)
	}
	names, err := parseKnownPeers(kp.path, []byte(b.String()))
	if err != nil {
		return err
	}
	kp.names = names
	return nil
}
