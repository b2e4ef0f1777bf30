package session

import (
	"context"
	"sync"
	"testing"
)

type kickLink struct{ kicked chan struct{} }

func (k *kickLink) Kick() { close(k.kicked) }

// A receive loop passing one ctx registers it once; its end kicks the
// direct reader using it.
func TestDirectWatch(t *testing.T) {
	var mu sync.Mutex
	var d Direct[*kickLink]
	l := &kickLink{kicked: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	for range 3 {
		mu.Lock()
		d.Watch(ctx, &mu)
		d.Begin(ctx, l)
		if !d.Busy() {
			t.Fatal("a direct reader is not recorded")
		}
		d.End()
		d.Watch(ctx, &mu)
		if d.watchCtx != ctx || d.watchStop == nil {
			t.Fatal("the ctx registration was not kept for the next read")
		}
		mu.Unlock()
	}
	mu.Lock()
	d.Begin(ctx, l)
	mu.Unlock()
	cancel()
	<-l.kicked // the ctx's end kicked the reader
	mu.Lock()
	d.End()
	d.Unwatch()
	mu.Unlock()
}
