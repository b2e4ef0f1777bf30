package icepath

import (
	"errors"
	"sync"
	"time"

	"github.com/nearnet/nearnet/internal/session"
	"github.com/nearnet/nearnet/internal/transport/ice"
)

// What a failed STUN or TURN server costs a session: pion's gathering
// only logs it (a relayed candidate missing, a TURN server that does not
// answer holding the exchange for half a minute), so each exchange also
// asks every server directly (ice.Probe) and reports each failure, typed
// (ice.ServerError), to the session's viability callback as the API's
// PathUnavailable, within a few seconds. The LAN path is not touched.

// probeFor is how long one probe's results serve the node's exchanges:
// sessions that start together cost the servers one probe.
const probeFor = 30 * time.Second

// probes are a node's latest probe of its servers.
type probes struct {
	mu      sync.Mutex // guards the fields below
	at      time.Time
	errs    []error
	running chan struct{} // closed when the probe under way ends; nil if none
}

// serverErrors returns the failures of the node's servers, probing them
// if the last probe is older than probeFor.
func (ni *Node) serverErrors() []error {
	p := &ni.probes
	p.mu.Lock()
	for p.running != nil {
		ch := p.running
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ni.ctx.Done():
			return nil
		}
		p.mu.Lock()
	}
	if !p.at.IsZero() && time.Since(p.at) < probeFor {
		defer p.mu.Unlock()
		return p.errs
	}
	ch := make(chan struct{})
	p.running = ch
	p.mu.Unlock()

	rs, err := ice.Probe(ni.ctx, ni.cfg, 0)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	p.mu.Lock()
	if ni.ctx.Err() == nil {
		p.at, p.errs = time.Now(), errs
	}
	p.running = nil
	p.mu.Unlock()
	close(ch)
	return errs
}

// diagnose reports the failures of the node's servers to s (run beside
// the gathering of each exchange).
func (ni *Node) diagnose(s *session.Session) {
	for _, err := range ni.serverErrors() {
		if ni.ctx.Err() != nil {
			return
		}
		ni.log.Debug("nearnet: ICE: server failed", "peer", short(s), "err", err)
		s.PathUnavailable(err)
	}
}

// noPath reports that an exchange's checks found no path.
func (ni *Node) noPath(s *session.Session, err error) {
	if errors.Is(err, ice.ErrNoPath) && ni.ctx.Err() == nil {
		s.PathUnavailable(err)
	}
}
