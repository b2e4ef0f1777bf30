package pathmon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limits of Options.PollInterval.
const (
	DefaultPollInterval = 2 * time.Second
	MinPollInterval     = 10 * time.Millisecond
	MaxPollInterval     = time.Hour
)

// maxQueue bounds the events waiting for one consumer; past it they are
// coalesced (see the package documentation).
const maxQueue = 256

// ErrClosed is returned by [Monitor.Watch] once the monitor is closed.
var ErrClosed = errors.New("pathmon: monitor closed")

// ConfigError reports an invalid [Options] field: Field names it, as
// "pathmon.Options.Field", Value is what was given, Reason what is allowed.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("nearnet: invalid %s (%v): %s", e.Field, e.Value, e.Reason)
}

// Options configures a [Monitor]. The zero value watches every interface
// with netlink on Linux and by polling every 2 seconds elsewhere.
type Options struct {
	// Interfaces names the interfaces to watch. If empty, all are.
	// Names need not exist yet: an interface that appears later under a
	// listed name is reported when it does. Each name must be 1 to 256
	// bytes without NUL.
	Interfaces []string

	// ForcePoll makes the monitor poll even where netlink is available
	// (Linux), for tests and for systems where netlink sockets are not
	// allowed.
	ForcePoll bool

	// PollInterval is how often a polling monitor reads the interfaces.
	// On Linux without ForcePoll it is used only if netlink fails: if it
	// cannot be opened at all, the monitor polls at this interval; if a
	// subscription breaks and cannot be renewed, it reads the interfaces
	// at each retry, from this interval backing off to 30 seconds. If zero,
	// [DefaultPollInterval]; otherwise from [MinPollInterval] to
	// [MaxPollInterval].
	PollInterval time.Duration

	// Logger receives debug and warning messages (netlink errors,
	// fallbacks). If nil, nothing is logged.
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.PollInterval != 0 && (o.PollInterval < MinPollInterval || o.PollInterval > MaxPollInterval) {
		return &ConfigError{Field: "pathmon.Options.PollInterval", Value: o.PollInterval,
			Reason: "must be 0 (default " + DefaultPollInterval.String() + ") or from " + MinPollInterval.String() + " to " + MaxPollInterval.String()}
	}
	for _, n := range o.Interfaces {
		if n == "" || len(n) > 256 || strings.IndexByte(n, 0) >= 0 {
			return &ConfigError{Field: "pathmon.Options.Interfaces", Value: n, Reason: "an interface name must be 1 to 256 bytes without NUL"}
		}
	}
	return nil
}

// Monitor watches network interfaces and their addresses and reports
// changes as [Event] values, through [Monitor.Events] or [Monitor.Watch].
//
// Create one with [New] and stop it with [Monitor.Close]. A Monitor is
// safe for concurrent use by multiple goroutines.
type Monitor struct {
	log      *slog.Logger
	filter   map[string]bool // nil: every interface
	interval time.Duration
	mode     string

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup
	events    chan Event

	mu   sync.Mutex // guards cur and subs
	cur  map[int]Interface
	subs map[*sub]struct{}
}

// sub is one consumer of events: the Events channel or a Watch call.
type sub struct {
	queue  []Event       // not yet delivered; guarded by Monitor.mu
	told   map[int]view  // the state delivered events describe; guarded by Monitor.mu
	notify chan struct{} // capacity 1: the queue has events
}

// New starts a monitor: it reads the current interfaces (see
// [Monitor.Snapshot]) and from then on reports changes. With netlink
// (Linux, unless opts.ForcePoll) changes are seen as the kernel makes
// them; polling sees them within opts.PollInterval.
//
// A bad option is a [*ConfigError] naming the field. If the initial read
// fails, New returns that error; if netlink cannot be opened, the monitor
// falls back to polling and logs why.
func New(opts Options) (*Monitor, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m := &Monitor{
		log:      opts.Logger,
		interval: opts.PollInterval,
		done:     make(chan struct{}),
		events:   make(chan Event),
		subs:     map[*sub]struct{}{},
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.interval == 0 {
		m.interval = DefaultPollInterval
	}
	if len(opts.Interfaces) > 0 {
		m.filter = map[string]bool{}
		for _, n := range opts.Interfaces {
			m.filter[n] = true
		}
	}
	// Subscribe before the first snapshot, so that no change falls between.
	var nl *nlWatcher
	if !opts.ForcePoll {
		var err error
		if nl, err = startNetlink(m); err != nil {
			if !errors.Is(err, errNoNetlink) {
				m.log.Warn("pathmon: netlink unavailable, polling instead", "interval", m.interval, "err", err)
			}
			nl = nil
		}
	}
	snap, err := systemSnapshot()
	if err != nil {
		if nl != nil {
			nl.stop()
		}
		return nil, err
	}
	m.cur = m.filtered(snap)
	m.mode = "poll"
	if nl != nil {
		m.mode = "netlink"
	}
	s := m.newSub()
	m.wg.Add(2)
	go func() { defer m.wg.Done(); m.deliverEvents(s) }()
	if nl != nil {
		go func() { defer m.wg.Done(); nl.run() }()
	} else {
		go func() { defer m.wg.Done(); m.poll() }()
	}
	return m, nil
}

// Mode returns "netlink" or "poll": how the monitor learns of changes.
func (m *Monitor) Mode() string { return m.mode }

// Close stops the monitor and waits for its goroutines. The Events channel
// is closed and Watch calls return [ErrClosed]; undelivered events are
// dropped. Close is idempotent and always returns nil.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		m.wg.Wait()
	})
	return nil
}

// Snapshot returns the watched interfaces as last seen, sorted by index.
// The slice is the caller's.
func (m *Monitor) Snapshot() []Interface {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Interface, 0, len(m.cur))
	for _, idx := range slices.Sorted(maps.Keys(m.cur)) {
		out = append(out, m.cur[idx].clone())
	}
	return out
}

// Events returns the channel of changes seen since [New] returned. It is
// closed by [Monitor.Close]. Every call returns the same channel, so it has
// one reader's worth of events: other consumers use [Monitor.Watch].
//
// The channel never blocks the monitor: if the reader falls more than 256
// events behind, the events waiting are coalesced into the shortest list
// that leads from what the reader was told to the current state.
func (m *Monitor) Events() <-chan Event { return m.events }

// Watch calls fn with every change seen after Watch is called, one event
// at a time, on the caller's goroutine, until ctx is done (it returns
// ctx.Err()) or the monitor is closed (it returns [ErrClosed]). Each Watch
// has its own queue, coalesced as [Monitor.Events] describes, so a slow fn
// holds up neither the monitor nor other watchers. fn must not call
// [Monitor.Close].
func (m *Monitor) Watch(ctx context.Context, fn func(Event)) error {
	select {
	case <-m.done:
		return ErrClosed
	default:
	}
	s := m.newSub()
	defer func() {
		m.mu.Lock()
		delete(m.subs, s)
		m.mu.Unlock()
	}()
	for {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			select {
			case <-m.done:
				return ErrClosed
			default:
			}
			ev, ok := m.pop(s)
			if !ok {
				break
			}
			fn(ev)
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return ErrClosed
		}
	}
}

func (m *Monitor) deliverEvents(s *sub) {
	defer close(m.events)
	for {
		for {
			ev, ok := m.pop(s)
			if !ok {
				break
			}
			select {
			case m.events <- ev:
			case <-m.done:
				return
			}
		}
		select {
		case <-s.notify:
		case <-m.done:
			return
		}
	}
}

func (m *Monitor) newSub() *sub {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &sub{told: viewsOf(m.cur), notify: make(chan struct{}, 1)}
	m.subs[s] = struct{}{}
	return s
}

// pop takes the next event for s, if any.
func (m *Monitor) pop(s *sub) (Event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(s.queue) == 0 {
		return Event{}, false
	}
	ev := s.queue[0]
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
	applyEvent(s.told, ev)
	return ev, true
}

// publish queues evs for every consumer. m.mu must be held.
func (m *Monitor) publish(evs []Event, now time.Time) {
	if len(evs) == 0 {
		return
	}
	for _, ev := range evs {
		m.log.Debug("pathmon: event", "event", ev.String())
	}
	for s := range m.subs {
		if len(s.queue)+len(evs) > maxQueue {
			// Coalesce: what the consumer was told, straight to now.
			s.queue = diffAll(s.told, viewsOf(m.cur), now)
		} else {
			s.queue = append(s.queue, evs...)
		}
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

func (m *Monitor) wants(name string) bool { return m.filter == nil || m.filter[name] }

func (m *Monitor) filtered(all map[int]Interface) map[int]Interface {
	out := make(map[int]Interface, len(all))
	for idx, i := range all {
		if m.wants(i.Name) {
			out[idx] = i
		}
	}
	return out
}

// replaceAll makes snap (every interface of the system) the current state.
func (m *Monitor) replaceAll(snap map[int]Interface) {
	now := time.Now()
	next := m.filtered(snap)
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := diffAll(viewsOf(m.cur), viewsOf(next), now)
	m.cur = next
	m.publish(evs, now)
}

// set makes i the current state of interface idx; nil removes it.
func (m *Monitor) set(idx int, i *Interface) {
	if i != nil && !m.wants(i.Name) {
		i = nil
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var o, n *view
	if old, ok := m.cur[idx]; ok {
		v := viewOf(old)
		o = &v
	}
	if i != nil {
		v := viewOf(*i)
		n = &v
		m.cur[idx] = *i
	} else {
		delete(m.cur, idx)
	}
	m.publish(diff(idx, o, n, now), now)
}

// lookup returns the current state of interface idx.
func (m *Monitor) lookup(idx int) (Interface, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.cur[idx]
	return i, ok
}

// setAddr adds or removes one address of interface idx, which must be
// known; it reports whether it was.
func (m *Monitor) setAddr(idx int, p netip.Prefix, add bool) bool {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.cur[idx]
	if !ok {
		return false
	}
	old := viewOf(i)
	if add {
		i.Prefixes = addPrefix(i.Prefixes, p)
	} else {
		i.Prefixes = removePrefix(i.Prefixes, p)
	}
	m.cur[idx] = i
	n := viewOf(i)
	m.publish(diff(idx, &old, &n, now), now)
	return true
}

// poll reads the interfaces every interval until Close.
func (m *Monitor) poll() {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
		}
		snap, err := systemSnapshot()
		if err != nil {
			m.log.Warn("pathmon: cannot read interfaces", "err", err)
			continue
		}
		m.replaceAll(snap)
	}
}
