// Package filetest writes and checks the files of transfer tests.
package filetest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// WriteRandom writes n random bytes to path (creating its directory) and
// returns their SHA-256 in hex.
func WriteRandom(t testing.TB, path string, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return SHA256(b)
}

// FileSHA256 returns the SHA-256 in hex of the file at path.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return SHA256(b)
}

// SHA256 returns the SHA-256 of b in hex, as the CLI prints it.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
