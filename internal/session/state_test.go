package session

import (
	"slices"
	"sync"
	"testing"
)

type st struct {
	name  string
	final bool
}

// An owner as the root's Conn is one: a lock around the Machine, callbacks
// queued under it in the order of the changes and run after it is
// released, so a callback may take the lock again.
type owner struct {
	mu    sync.Mutex
	m     Machine[st]
	queue []func()
	seen  []string
}

func (o *owner) set(s st) {
	o.mu.Lock()
	if o.m.Set(s, s.final) {
		o.queue = append(o.queue, func() {
			o.mu.Lock() // a callback calls back into the owner
			cur := o.m.Cur().name
			o.mu.Unlock()
			o.seen = append(o.seen, s.name+"@"+cur)
		})
	}
	o.mu.Unlock()
}

func (o *owner) run() {
	for len(o.queue) > 0 {
		f := o.queue[0]
		o.queue = o.queue[1:]
		f()
	}
}

func TestMachineTransitionsAndCallbackOrder(t *testing.T) {
	o := &owner{}
	o.m.Init(st{name: "preparing"})
	ch := o.m.Changed()
	o.set(st{name: "waiting"})
	select {
	case <-ch:
	default:
		t.Fatal("a change did not close the watchers' channel")
	}
	o.set(st{name: "preparing"})
	o.set(st{name: "ready"})
	o.set(st{name: "failed", final: true})
	final := o.m.Changed()
	o.set(st{name: "cancelled", final: true}) // too late: failed is final
	o.set(st{name: "ready"})
	select {
	case <-final:
		t.Fatal("a final state changed")
	default:
	}
	if !o.m.Terminal() || o.m.Cur().name != "failed" {
		t.Fatalf("state %v terminal %v, want failed", o.m.Cur(), o.m.Terminal())
	}
	o.run()
	want := []string{"waiting@failed", "preparing@failed", "ready@failed", "failed@failed"}
	if !slices.Equal(o.seen, want) {
		t.Fatalf("callbacks %v, want %v", o.seen, want)
	}
}
