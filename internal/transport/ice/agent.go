package ice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	pice "github.com/pion/ice/v4"
)

// Description is what one side of an ICE exchange tells the other: its
// credentials for the connectivity checks (RFC 8445 section 5.3) and its
// candidates in the SDP attribute form of RFC 8839 ("candidate:..."
// without the "a=" prefix).
type Description struct {
	Ufrag      string
	Pwd        string
	Candidates []string
}

// Agent is one side of one ICE exchange. It is safe for concurrent use.
// Close releases its sockets and TURN allocations; a [Path] it returned
// owns it from then on, and closing the Path closes the Agent.
type Agent struct {
	a        *pice.Agent
	cfg      Config
	log      *slog.Logger
	gathered chan struct{}
	dead     chan struct{} // closed when ICE fails or the agent closes

	mu      sync.Mutex // guards cands and state
	cands   []string
	state   pice.ConnectionState
	stateCh chan struct{} // closed at the next state change
}

// ErrNoPath is the error of a Connect whose checks all failed: no pair of
// candidates reached the peer (a NAT that maps every destination apart
// on both sides, and no TURN server, or one that could not be reached).
var ErrNoPath = errors.New("nearnet: ICE: no candidate pair reached the peer (each NAT maps every destination apart, and no TURN server relays)")

// NewAgent makes an agent and starts gathering its candidates.
func NewAgent(cfg Config) (*Agent, error) {
	urls, err := cfg.urls()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	types := []pice.CandidateType{pice.CandidateTypeHost, pice.CandidateTypeServerReflexive, pice.CandidateTypeRelay}
	if cfg.NoHost {
		types = types[1:]
	}
	if cfg.RelayOnly {
		types = []pice.CandidateType{pice.CandidateTypeRelay} // with NoHost too
	}
	failed := cfg.checkTimeout()
	disconnected := min(failed/2, 3*time.Second)
	opts := []pice.AgentOption{
		pice.WithUrls(urls),
		pice.WithNetworkTypes([]pice.NetworkType{pice.NetworkTypeUDP4, pice.NetworkTypeUDP6}),
		pice.WithCandidateTypes(types),
		pice.WithMulticastDNSMode(pice.MulticastDNSModeDisabled),
		pice.WithDisconnectedTimeout(disconnected),
		pice.WithFailedTimeout(failed - disconnected),
		pice.WithKeepaliveInterval(time.Second),
		pice.WithLoggerFactory(slogFactory{log}),
	}
	n := cfg.Net
	if n == nil {
		if n, err = newBufNet(); err != nil {
			return nil, fmt.Errorf("ice: %w", err)
		}
	}
	opts = append(opts, pice.WithNet(n))
	if cfg.Loopback {
		opts = append(opts, pice.WithIncludeLoopback(), pice.WithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }))
	}
	a, err := pice.NewAgentWithOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("ice: %w", err)
	}
	ag := &Agent{a: a, cfg: cfg, log: log, gathered: make(chan struct{}), dead: make(chan struct{}), stateCh: make(chan struct{})}
	var once, deadOnce sync.Once
	a.OnCandidate(func(c pice.Candidate) {
		if c == nil {
			once.Do(func() { close(ag.gathered) })
			return
		}
		ag.mu.Lock()
		ag.cands = append(ag.cands, c.Marshal())
		ag.mu.Unlock()
	})
	a.OnConnectionStateChange(func(s pice.ConnectionState) {
		ag.mu.Lock()
		ag.state = s
		close(ag.stateCh)
		ag.stateCh = make(chan struct{})
		ag.mu.Unlock()
		if s == pice.ConnectionStateFailed || s == pice.ConnectionStateClosed {
			deadOnce.Do(func() { close(ag.dead) })
		}
	})
	if err := a.GatherCandidates(); err != nil {
		a.Close()
		return nil, fmt.Errorf("ice: gathering candidates: %w", err)
	}
	return ag, nil
}

// Gather waits until every candidate is gathered (a STUN or TURN server
// that does not answer costs its timeout) or ctx ends, and returns this
// side's description with what was gathered by then.
func (a *Agent) Gather(ctx context.Context) (Description, error) {
	select {
	case <-a.gathered:
	case <-ctx.Done():
	}
	ufrag, pwd, err := a.a.GetLocalUserCredentials()
	if err != nil {
		return Description{}, fmt.Errorf("ice: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return Description{Ufrag: ufrag, Pwd: pwd, Candidates: append([]string(nil), a.cands...)}, nil
}

// Connect runs the connectivity checks against the peer's description
// and returns the path once a pair is nominated. One side controls (it
// nominates the pair; in nearnet the side that dialed the session) and
// the other does not. ctx bounds the checks; cancelling it after Connect
// returned has no effect on the path. A failure leaves the agent to
// Close.
func (a *Agent) Connect(ctx context.Context, controlling bool, remote Description) (*Path, error) {
	for _, s := range remote.Candidates {
		c, err := pice.UnmarshalCandidate(s)
		if err != nil {
			return nil, &DescriptionError{What: fmt.Sprintf("candidate %q: %v", s, err)}
		}
		if err := a.a.AddRemoteCandidate(c); err != nil {
			return nil, fmt.Errorf("ice: %w", err)
		}
	}
	var conn *pice.Conn
	var err error
	if controlling {
		conn, err = a.a.StartDial(remote.Ufrag, remote.Pwd)
	} else {
		conn, err = a.a.StartAccept(remote.Ufrag, remote.Pwd)
	}
	if err != nil {
		return nil, fmt.Errorf("ice: %w", err)
	}
	for {
		a.mu.Lock()
		st, ch := a.state, a.stateCh
		a.mu.Unlock()
		switch st {
		case pice.ConnectionStateConnected, pice.ConnectionStateCompleted:
			return newPath(a, conn), nil
		case pice.ConnectionStateFailed, pice.ConnectionStateClosed:
			return nil, ErrNoPath
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("ice: checks: %w", ctx.Err())
		}
	}
}

// AddRemote adds candidates the peer gathered later (trickled, RFC 8838).
func (a *Agent) AddRemote(cands []string) error {
	for _, s := range cands {
		c, err := pice.UnmarshalCandidate(s)
		if err != nil {
			return &DescriptionError{What: fmt.Sprintf("candidate %q: %v", s, err)}
		}
		if err := a.a.AddRemoteCandidate(c); err != nil {
			return fmt.Errorf("ice: %w", err)
		}
	}
	return nil
}

// alive reports whether the agent has a working pair.
func (a *Agent) alive() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state == pice.ConnectionStateConnected || a.state == pice.ConnectionStateCompleted
}

// closed reports whether the agent has closed.
func (a *Agent) closed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state == pice.ConnectionStateClosed
}

// Close releases the agent's sockets and TURN allocations.
func (a *Agent) Close() error { return a.a.Close() }

// DescriptionError is a peer's description that cannot be used.
type DescriptionError struct{ What string }

func (e *DescriptionError) Error() string { return "ice: bad description from the peer: " + e.What }
