package session

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/nearnet/nearnet/pathmon"
)

// PathWatch is a node's path monitor, started once: at each change of
// interfaces or addresses it tells every session (Session.PathChanged)
// and closes the channel Changed returned.
type PathWatch struct {
	once sync.Once
	mu   sync.Mutex // guards the fields below
	pm   *pathmon.Monitor
	stop context.CancelFunc
	ch   chan struct{} // closed and replaced at each path change
}

// Start starts watching, once, on a goroutine of goFn; sessions lists the
// sessions to tell. Without a monitor, viability follows keepalives only.
func (w *PathWatch) Start(o pathmon.Options, goFn func(func()), sessions func() []*Session) {
	w.once.Do(func() {
		m, err := pathmon.New(o)
		if err != nil {
			o.Logger.Warn("nearnet: no path monitor; viability follows keepalives only", "err", err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		w.mu.Lock()
		w.pm, w.stop = m, cancel
		w.mu.Unlock()
		goFn(func() { m.Watch(ctx, func(e pathmon.Event) { w.event(o.Logger, e, sessions()) }) })
	})
}

// event applies a path change to every session: links whose local
// address went away are dropped (their sessions resume elsewhere), links
// on an interface that went down are inviable until it is up again, and
// anything waiting to connect or resume retries at once.
func (w *PathWatch) event(log *slog.Logger, e pathmon.Event, sessions []*Session) {
	log.Debug("nearnet: path change", "event", e.String())
	var up map[netip.Addr]bool // nil: no monitor, no address known
	if m := w.Monitor(); m != nil {
		up = UpAddrs(m.Snapshot())
	}
	w.mu.Lock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
	for _, s := range sessions {
		s.PathChanged(up)
	}
}

// Monitor is the path monitor, nil before Start or if it failed.
func (w *PathWatch) Monitor() *pathmon.Monitor {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pm
}

// Changed returns a channel closed at the next path change.
func (w *PathWatch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// Stop ends the watch; Close, after the watch's goroutine has ended,
// closes the monitor.
func (w *PathWatch) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		w.stop()
	}
}

func (w *PathWatch) Close() {
	if m := w.Monitor(); m != nil {
		m.Close()
	}
}
