package session

import (
	"context"
	"sync"
)

// Kicker is a link a direct reader can be woken from: Kick makes its read
// return at once.
type Kicker interface{ Kick() }

// Direct lets one reader at a time read a link itself instead of waiting
// for the queue (the direct read: internal/link's Link.ReadDirect), and
// wakes that reader when its ctx ends. The ctx's registration is kept for
// the next read with the same ctx (a receive loop usually passes one ctx
// every time), so that a read does not pay for registering and removing a
// context callback.
//
// Direct is guarded by its owner's lock, the Locker given to Watch.
type Direct[K Kicker] struct {
	on        bool            // a reader is reading a link itself
	ctx       context.Context // its ctx
	link      K               // the link it reads
	watchCtx  context.Context // the ctx whose end interrupts direct reads
	watchStop func() bool     // removes that registration
}

// Busy reports whether a reader is reading a link itself.
func (d *Direct[K]) Busy() bool { return d.on }

// Begin records that a reader with ctx reads link l itself.
func (d *Direct[K]) Begin(ctx context.Context, l K) { d.on, d.ctx, d.link = true, ctx, l }

// End records that the reader is done.
func (d *Direct[K]) End() {
	var none K
	d.on, d.ctx, d.link = false, nil, none
}

// Watch makes sure that ctx ending kicks a direct read made with it; the
// callback takes mu, the owner's lock.
func (d *Direct[K]) Watch(ctx context.Context, mu sync.Locker) {
	if ctx.Done() == nil || d.watchCtx == ctx {
		return
	}
	d.Unwatch()
	d.watchCtx = ctx
	d.watchStop = context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if d.on && d.ctx == ctx {
			d.link.Kick()
		}
	})
}

// Unwatch removes the ctx registration: the session ended.
func (d *Direct[K]) Unwatch() {
	if d.watchStop != nil {
		d.watchStop()
		d.watchStop, d.watchCtx = nil, nil
	}
}
