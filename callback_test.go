package nearnet

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nearnet/nearnet/security"
)

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Every callback may call any method of the Conn or the Node: none runs
// under a lock of the library. Each one here calls the Conn's and Node's
// methods that take its locks; a callback run under c.mu or n.mu would
// deadlock, and the test would time out. The last state callback closes
// the Conn from inside the callback.
func TestCallbacksMayCallAnyMethod(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		var mu sync.Mutex
		var states []StateKind
		var viability []ViabilityKind
		var a *Node
		touch := func(c *Conn) {
			c.State()
			c.Peer()
			c.Viable()
			c.DatagramStats()
			c.MaxDatagramSize()
			a.Peers()
			a.Name()
			a.Addr()
		}
		closedFromCallback := make(chan error, 1)
		a = newNodeOn(t, tr, Config{
			ViabilityDebounce: 10 * time.Millisecond,
			OnStateChange: func(c *Conn, s State) {
				touch(c)
				mu.Lock()
				states = append(states, s.Kind)
				mu.Unlock()
				if s.Kind == StateReady {
					c.Restart() // a resumed session reports Reconnected through OnViability
				}
			},
			OnViability: func(c *Conn, e ViabilityEvent) {
				touch(c)
				mu.Lock()
				viability = append(viability, e.Kind)
				mu.Unlock()
				if e.Kind == Reconnected {
					closedFromCallback <- c.Close()
				}
			},
		})
		rejected := make(chan struct{}, 1)
		var bp atomic.Pointer[Node] // set once b exists; a stray dial may come before
		b := newNodeOn(t, tr, Config{
			Admit: func(ctx context.Context, p Peer) error {
				if b := bp.Load(); b != nil {
					b.Peers()
					b.Name()
				}
				return nil
			},
			OnReject: func(remote net.Addr, err error) {
				if b := bp.Load(); b != nil {
					b.Peers()
				}
				select {
				case rejected <- struct{}{}:
				default:
				}
			},
		})
		bp.Store(b)
		ca, err := a.ConnectAdvert(ctxT(t), advertOfNode(b))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-closedFromCallback:
			if err != nil {
				t.Fatalf("Close from OnViability: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no Reconnected event, or Close from inside a callback deadlocked")
		}
		<-ca.Done()
		waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(states) >= 3 })
		mu.Lock()
		if len(states) != 3 || states[0] != StatePreparing || states[1] != StateReady || states[2] != StateCancelled {
			t.Errorf("states %v, want [preparing ready cancelled]", states)
		}
		mu.Unlock()

		// OnReject runs for a dialer with the wrong key, and may call in too.
		k, _ := security.GenerateKey()
		other := newNodeOn(t, tr, Config{Key: &k})
		other.ConnectAdvert(ctxT(t), advertOfNode(b))
		select {
		case <-rejected:
		case <-time.After(10 * time.Second):
			t.Fatal("OnReject not called")
		}
	})
}
