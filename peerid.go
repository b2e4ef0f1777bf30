package nearnet

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nearnet/nearnet/internal/fsutil"
)

// PeerID identifies a node: 128 random bits, written as 32 lowercase hex
// digits. Peers use it to recognise each other across addresses and to
// decide which of two duplicate connections to drop. It carries nothing
// about the device; rotate it (make a new one) to stop being recognised.
type PeerID [16]byte

// NewPeerID returns a random PeerID.
func NewPeerID() PeerID {
	var id PeerID
	rand.Read(id[:]) // crypto/rand.Read never fails
	return id
}

// ParsePeerID parses the text form of a PeerID (32 hex digits; case is
// ignored).
func ParsePeerID(s string) (PeerID, error) {
	var id PeerID
	if len(s) != 32 {
		return id, fmt.Errorf("nearnet: peer ID %q: want 32 hex digits, got %d characters", s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("nearnet: peer ID %q: not hex", s)
	}
	return id, nil
}

// String returns the 32-digit lowercase hex form.
func (id PeerID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for logs and default names.
func (id PeerID) Short() string { return id.String()[:8] }

// IsZero reports whether id is the zero PeerID (no peer).
func (id PeerID) IsZero() bool { return id == PeerID{} }

// Compare orders PeerIDs as big-endian numbers (equivalently, by their
// text forms): -1, 0 or +1.
func (id PeerID) Compare(o PeerID) int { return bytes.Compare(id[:], o[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id PeerID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *PeerID) UnmarshalText(b []byte) error {
	p, err := ParsePeerID(string(b))
	if err == nil {
		*id = p
	}
	return err
}

// LoadOrCreatePeerID reads a PeerID persisted at path, or creates one there
// (mode 0600) if the file does not exist. A file that exists but does not
// hold a PeerID is an error; it is never overwritten.
func LoadOrCreatePeerID(path string) (PeerID, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		id, perr := ParsePeerID(strings.TrimSpace(string(b)))
		if perr != nil {
			return PeerID{}, fmt.Errorf("nearnet: %s: %w (delete the file to make a new peer ID)", path, perr)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return PeerID{}, err
	}
	id := NewPeerID()
	if err := fsutil.ReplaceFile(path, []byte(id.String()+"\n")); err != nil {
		return PeerID{}, err
	}
	return id, nil
}

// RotatePeerID replaces the PeerID persisted at path with a new random one
// and returns it.
func RotatePeerID(path string) (PeerID, error) {
	id := NewPeerID()
	return id, fsutil.ReplaceFile(path, []byte(id.String()+"\n"))
}
