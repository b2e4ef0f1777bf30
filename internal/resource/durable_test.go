package resource

import (
	"os"
	"path/filepath"
	"testing"
)

// A background sync that fails must fail the final sync, even when the
// final one itself succeeds: the kernel reports a failed writeback once.
func TestSyncerKeepsBackgroundError(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newSyncer(f, 0)
	broken, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	s.f = broken // its Sync fails
	s.wrote(syncEvery)
	if s.done == nil {
		t.Fatal("no background sync started after syncEvery bytes")
	}
	s.wait()
	s.f = f // the final sync succeeds
	if err := s.sync(); err == nil {
		t.Fatal("sync: nil error after a failed background sync")
	}
}

func TestSyncerStartsAndWaits(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newSyncer(f, 0)
	s.wrote(syncEvery - 1)
	if s.done != nil {
		t.Fatal("a sync started before syncEvery bytes")
	}
	s.wrote(syncEvery)
	if s.done == nil {
		t.Fatal("no background sync started after syncEvery bytes")
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	if s.done != nil {
		t.Fatal("sync returned with a background sync in flight")
	}
}
