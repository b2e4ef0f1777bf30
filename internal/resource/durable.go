package resource

import "os"

// syncEvery is how much content is written between two syncs of a
// partial file while it is received.
//
// A sync is what makes content durable, and most of its cost is waiting
// for the disk (in a virtual machine, for the host to flush its own cache
// of the whole file): about half a second per GiB here. Syncing in the
// background as the content arrives overlaps that wait with the network,
// and the sync before the rename only has the last few MiB left to do.
const syncEvery = 32 << 20

// syncer syncs a file in the background, one sync at a time, as a
// transfer writes it. Its methods are called from one goroutine.
type syncer struct {
	f    *os.File
	next int64      // the offset past which the next sync starts
	done chan error // the sync in flight; nil if none
	err  error      // the first error of a background sync
}

func newSyncer(f *os.File, from int64) *syncer {
	return &syncer{f: f, next: from + syncEvery}
}

// wrote records that the file holds content up to offset end; it starts
// a sync if syncEvery bytes came since the last one began and none is in
// flight.
func (s *syncer) wrote(end int64) {
	if s.done != nil {
		select {
		case err := <-s.done:
			s.took(err)
		default:
			return
		}
	}
	if end < s.next {
		return
	}
	s.next = end + syncEvery
	done := make(chan error, 1)
	s.done = done
	f := s.f
	go func() { done <- f.Sync() }()
}

// took records the end of the sync in flight. An error is kept for
// sync: the kernel reports a failed writeback to one fsync only.
func (s *syncer) took(err error) {
	s.done = nil
	if err != nil && s.err == nil {
		s.err = err
	}
}

// wait waits for the sync in flight, if any.
func (s *syncer) wait() {
	if s.done != nil {
		s.took(<-s.done)
	}
}

// sync makes all content written so far durable. It returns the first
// error of any sync, in the background or its own.
func (s *syncer) sync() error {
	s.wait()
	err := s.f.Sync()
	if s.err != nil {
		return s.err
	}
	return err
}
