package resource

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits on names. Most file systems allow 255 bytes per component; the
// whole name is capped so that the target directory plus the name stays
// well within every platform's path limit.
const (
	MaxNameLen      = 1024 // bytes, the whole '/'-separated name
	MaxComponentLen = 255  // bytes, one component
)

// SafeName checks a resource name from the network and returns it as a
// relative path in the local form (filepath.FromSlash), ready to join to
// the target directory. Otherwise it returns a [*NameError] saying why.
//
// A name is one or more components separated by '/' (a file inside a
// directory being sent, "photos/2024/a.jpg"). It must be valid UTF-8, at
// most [MaxNameLen] bytes, with no leading, trailing or doubled '/'. Each
// component must be at most [MaxComponentLen] bytes and must not be:
//
//   - "." or "..";
//   - holding NUL, another control character (C0, DEL, C1), a backslash,
//     any of : * ? " < > | (not allowed on Windows, ':' also names NTFS
//     streams), or a bidirectional-text control (U+200E, U+200F,
//     U+202A-U+202E, U+2066-U+2069; they make "gpj.exe" display as
//     "exe.jpg");
//   - ending in '.' or ' ' (Windows drops them, so two names would meet);
//   - a Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, also with
//     superscript digits, CONIN$, CONOUT$), in any case, with or without an
//     extension ("con.txt", "NUL.tar.gz");
//   - starting with ".nearnet-partial-", which names this package's
//     partial files.
//
// The name is first normalized to Unicode NFC (see [NormalizeName]), and
// the rules apply to that form, which is what SafeName returns: a
// precomposed "é.txt" and a decomposed "e\u0301.txt" are one name, as
// they are one file on macOS.
//
// The rules are the same on every platform, so a name one receiver
// accepts every receiver accepts. SafeName only looks at the string:
// symbolic links and existing files are handled when the file is opened
// (through [os.Root], so nothing resolves outside the directory).
func SafeName(name string) (string, error) {
	name = NormalizeName(name)
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.FromSlash(name), nil
}

// NormalizeName returns name in Unicode Normalization Form C, the form a
// receiver gives every offered name before it checks it: composed
// characters where Unicode has them ("é" as U+00E9, not "e" and U+0301).
// Without it, the two spellings would be two files on Linux and collide
// on file systems that ignore the difference (APFS, HFS+). A name that is
// not valid UTF-8 is returned unchanged (and [SafeName] rejects it).
func NormalizeName(name string) string {
	if !utf8.ValidString(name) {
		return name
	}
	return norm.NFC.String(name)
}

func checkName(name string) error {
	bad := func(format string, args ...any) error {
		return &NameError{Name: name, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLen:
		return bad("%d bytes long; at most %d allowed", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case name[0] == '/':
		return bad("absolute path")
	case name[len(name)-1] == '/':
		return bad("ends in '/'")
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == "" {
			return bad("empty component ('//')")
		}
		if err := checkComponent(c); err != "" {
			return bad("component %q %s", c, err)
		}
	}
	return nil
}

// checkComponent returns why c is not a safe file name, or "".
func checkComponent(c string) string {
	switch {
	case c == "..":
		return "leaves the directory"
	case c == ".":
		return "names the directory itself"
	case len(c) > MaxComponentLen:
		return fmt.Sprintf("is %d bytes long; at most %d allowed", len(c), MaxComponentLen)
	case strings.HasPrefix(c, partialPrefix):
		return "uses the prefix reserved for partial files"
	}
	for _, r := range c {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Sprintf("holds control character %U", r)
		case strings.ContainsRune(`\:*?"<>|`, r):
			return fmt.Sprintf("holds %q, not allowed in file names on Windows", r)
		case r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			return fmt.Sprintf("holds bidirectional control %U", r)
		}
	}
	switch c[len(c)-1] {
	case '.':
		return "ends in '.'"
	case ' ':
		return "ends in a space"
	}
	if isDeviceName(c) {
		return "is a Windows device name"
	}
	return ""
}

// isDeviceName reports whether Windows may treat c as a device: its part
// before the first '.', less trailing spaces, is a reserved name. Since
// Windows 11 "CON.txt" is an ordinary file, but older versions and other
// tools disagree, so any extension is rejected too.
func isDeviceName(c string) bool {
	base, _, _ := strings.Cut(c, ".")
	base = strings.TrimRight(base, " ")
	switch strings.ToUpper(base) {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) < 4 {
		return false
	}
	switch strings.ToUpper(base[:3]) {
	case "COM", "LPT":
		switch base[3:] {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "\u00b9", "\u00b2", "\u00b3":
			return true
		}
	}
	return false
}
