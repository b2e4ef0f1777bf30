package nearnet

import (
	"fmt"

	"github.com/nearnet/nearnet/internal/enum"
)

// StateKind is where a connection is in its life, after Network framework's
// NWConnection.State.
type StateKind int

// Connection states. A connection moves forward through them: setup →
// preparing → ready → cancelled or failed; waiting is entered from
// preparing when an attempt failed and a retry is due.
const (
	StateSetup     StateKind = iota // created, not started
	StatePreparing                  // dialing, TLS, upgrade, hello
	StateWaiting                    // an attempt failed (State.Err); waiting to retry
	StateReady                      // messages flow
	StateFailed                     // ended by an error (State.Err)
	StateCancelled                  // ended by Close or Abort, on either side
)

func (k StateKind) String() string {
	return enum.Name(k, "StateKind", "setup", "preparing", "waiting", "ready", "failed", "cancelled")
}

// State is a connection's state and, for waiting and failed (and cancelled
// by the peer), the error that caused it.
type State struct {
	Kind StateKind
	Err  error
}

func (s State) String() string {
	if s.Err != nil {
		return fmt.Sprintf("%v(%v)", s.Kind, s.Err)
	}
	return s.Kind.String()
}

// Terminal reports whether the state is final (failed or cancelled).
func (s State) Terminal() bool { return s.Kind == StateFailed || s.Kind == StateCancelled }
