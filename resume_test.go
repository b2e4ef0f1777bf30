package nearnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/relaytest"
)

// viabilityLog records OnViability events per Conn.
type viabilityLog struct {
	mu sync.Mutex
	ev []ViabilityKind
	ch chan ViabilityKind
}

func newViabilityLog() *viabilityLog { return &viabilityLog{ch: make(chan ViabilityKind, 1024)} }

func (v *viabilityLog) record(_ *Conn, e ViabilityEvent) {
	v.mu.Lock()
	v.ev = append(v.ev, e.Kind)
	v.mu.Unlock()
	select {
	case v.ch <- e.Kind:
	default:
	}
}

func (v *viabilityLog) wait(t *testing.T, k ViabilityKind) {
	t.Helper()
	ctx := ctxT(t)
	for {
		select {
		case got := <-v.ch:
			if got == k {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %v event; saw %v", k, v.ev)
		}
	}
}

// exchange sends count numbered messages each way and checks that each
// side receives them exactly once, in order, while blip runs.
func exchange(t *testing.T, ca, cb *Conn, count int, blip func()) {
	t.Helper()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	send := func(c *Conn) {
		defer wg.Done()
		var b [8]byte
		for i := 0; i < count; i++ {
			binary.BigEndian.PutUint64(b[:], uint64(i))
			if err := c.SendMessage(ctx, b[:]); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	}
	recv := func(c *Conn, who string) {
		defer wg.Done()
		for i := 0; i < count; i++ {
			m, err := c.ReceiveMessage(ctx)
			if err != nil {
				t.Errorf("%s: receive %d: %v", who, i, err)
				return
			}
			if got := binary.BigEndian.Uint64(m); got != uint64(i) {
				t.Errorf("%s: message %d arrived as number %d", who, i, got)
				return
			}
		}
	}
	wg.Add(4)
	go send(ca)
	go send(cb)
	go recv(ca, "dialer")
	go recv(cb, "listener")
	blip()
	wg.Wait()
}

// Restart swaps the transport connection under a session while messages
// flow both ways: every message arrives exactly once, in order.
func TestResumeAcrossRestart(t *testing.T) {
	va, vb := newViabilityLog(), newViabilityLog()
	a := newNode(t, Config{OnViability: va.record, DisablePathMonitor: true})
	b := newNode(t, Config{OnViability: vb.record, DisablePathMonitor: true})
	ca, cb := pair(t, a, b)
	exchange(t, ca, cb, 20000, func() {
		for i := 0; i < 5; i++ {
			time.Sleep(20 * time.Millisecond)
			ca.Restart()
			va.wait(t, Reconnected)
		}
	})
	vb.wait(t, Reconnected)
	if s, _ := ca.State(); s.Kind != StateReady {
		t.Fatalf("dialer state %v", s)
	}
	for ctx := ctxT(t); !ca.Viable() || !cb.Viable(); time.Sleep(5 * time.Millisecond) {
		if ctx.Err() != nil {
			t.Fatalf("not viable after resuming: %v %v", ca.Viable(), cb.Viable())
		}
	}
	if n := linkCount(ca); n != 1 {
		t.Fatalf("dialer holds %d links", n)
	}
}

// When the transport breaks and no new one comes within ResumeWindow, the
// connection fails with a SessionLostError that lists, in order, the
// messages the peer never acknowledged.
func TestResumeWindowExpires(t *testing.T) {
	a := newNode(t, Config{ResumeWindow: 300 * time.Millisecond, DisablePathMonitor: true})
	b := newNode(t, Config{ResumeWindow: 300 * time.Millisecond, DisablePathMonitor: true})
	r := relaytest.New(t, b.Addr().String())
	ctx := ctxT(t)
	ca, cb := pairAt(t, a, b, r.Addr())
	sendOne(t, ctx, ca, cb, "before")
	for !ackedAll(ca) { // acks trail deliveries by up to ackDelay
		if ctx.Err() != nil {
			t.Fatal("never acknowledged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Cut()
	// Messages sent while the session waits to resume are kept...
	var sent []string
	for i := 0; i < 3; i++ {
		m := fmt.Sprintf("during %d", i)
		if err := ca.SendMessage(ctx, []byte(m)); err != nil {
			break
		}
		sent = append(sent, m)
	}
	<-ca.Done()
	s, _ := ca.State()
	var sl *SessionLostError
	if s.Kind != StateFailed || !errors.As(s.Err, &sl) {
		t.Fatalf("dialer ended as %v, want failed with a SessionLostError", s)
	}
	// ...and reported as undelivered (those SendMessage accepted).
	var got []string
	for _, m := range sl.Undelivered {
		got = append(got, string(m))
	}
	if fmt.Sprint(got) != fmt.Sprint(sent) {
		t.Fatalf("undelivered %q, sent after the cut %q", got, sent)
	}
	if err := ca.SendMessage(ctx, []byte("after")); !errors.As(err, &sl) {
		t.Fatalf("SendMessage after the failure: %v", err)
	}
	// The listener gives up too.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case <-cb.Done():
	case <-waitCtx.Done():
		t.Fatal("listener's Conn did not end")
	}
}

// A resumed session does not leak: after many restarts the node holds one
// Conn with one link, and closing everything leaves no goroutines (TestMain
// checks).
func TestResumeNoLeak(t *testing.T) {
	a := newNode(t, Config{DisablePathMonitor: true})
	b := newNode(t, Config{DisablePathMonitor: true})
	va := newViabilityLog()
	a.cfg.OnViability = va.record
	ca, cb := pair(t, a, b)
	for i := 0; i < 10; i++ {
		ca.Restart()
		va.wait(t, Reconnected)
	}
	ctx := ctxT(t)
	if err := cb.SendMessage(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.ReceiveMessage(ctx); err != nil {
		t.Fatal(err)
	}
	if len(a.Peers()) != 1 || len(b.Peers()) != 1 {
		t.Fatalf("peers: %d and %d", len(a.Peers()), len(b.Peers()))
	}
}

// RetryConnect: a dialer started before its listener waits, then connects.
func TestConnectWaitsForListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet
	a := newNode(t, Config{RetryConnect: true, DisablePathMonitor: true})
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := a.Connect(ctxT(t), addr)
		ch <- res{c, err}
	}()
	time.Sleep(300 * time.Millisecond) // a few refused attempts
	b := newNode(t, Config{ListenAddr: addr})
	r := <-ch
	if r.err != nil {
		t.Fatalf("Connect: %v", r.err)
	}
	if r.c.Peer().ID != b.ID() {
		t.Fatal("connected to the wrong peer")
	}
	// Without RetryConnect the first refusal is the answer.
	c := newNode(t, Config{DisablePathMonitor: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, "127.0.0.1:1"); err == nil || ctx.Err() != nil {
		t.Fatalf("Connect to a closed port: %v (ctx %v)", err, ctx.Err())
	}
}

func ackedAll(c *Conn) bool {
	return c.s.Unacked() == 0
}

// A path that goes silent makes the connection inviable once keepalive
// pings go unanswered, and viable again when traffic passes.
func TestKeepaliveViability(t *testing.T) {
	va := newViabilityLog()
	cfg := Config{KeepAliveIdle: 50 * time.Millisecond, KeepAliveInterval: 20 * time.Millisecond, KeepAliveCount: 2,
		ViabilityDebounce: 10 * time.Millisecond, DisablePathMonitor: true, OnViability: va.record}
	a := newNode(t, cfg)
	b := newNode(t, Config{DisablePathMonitor: true})
	r := relaytest.New(t, b.Addr().String())
	ctx := ctxT(t)
	ca, cb := pairAt(t, a, b, r.Addr())
	r.Pause()
	va.wait(t, Inviable)
	if ca.Viable() {
		t.Fatal("Viable() is true after an Inviable event")
	}
	if err := ca.SendMessage(ctx, []byte("through the silence")); err != nil {
		t.Fatal(err)
	}
	r.Resume()
	va.wait(t, Viable)
	if m, err := cb.ReceiveMessage(ctx); err != nil || string(m) != "through the silence" {
		t.Fatalf("%q %v", m, err)
	}
	if s, _ := ca.State(); s.Kind != StateReady {
		t.Fatalf("state %v after the path came back", s)
	}
}

// Close on a connection waiting to resume waits for the new transport
// connection, so that what was sent during the break arrives before the
// close (it used to end at once, and those messages were lost silently).
func TestCloseWhileSuspendedDelivers(t *testing.T) {
	a := newNode(t, Config{DisablePathMonitor: true})
	b := newNode(t, Config{DisablePathMonitor: true})
	r := relaytest.New(t, b.Addr().String())
	ctx := ctxT(t)
	ca, cb := pairAt(t, a, b, r.Addr())
	r.Cut()
	for ca.Viable() { // suspended: the transport is gone
		if ctx.Err() != nil {
			t.Fatal("still viable after the cut")
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := []string{"during 0", "during 1", "during 2"}
	for _, m := range want {
		if err := ca.SendMessage(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- ca.Close() }()
	r.Heal()
	if err := <-closed; err != nil {
		t.Fatalf("Close after the break healed: %v", err)
	}
	var got []string
	for {
		m, err := cb.ReceiveMessage(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("listener: %v after %q", err, got)
			}
			break
		}
		got = append(got, string(m))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listener received %q; want %q", got, want)
	}
}

// A session lost after its transport ended in EOF (the peer's host closed
// it) does not read as a clean close: errors.Is(err, io.EOF) is false, as
// callers of ReceiveMessage take io.EOF to mean the peer closed gracefully.
func TestSessionLostIsNotEOF(t *testing.T) {
	a := newNode(t, Config{ResumeWindow: 300 * time.Millisecond, DisablePathMonitor: true})
	b := newNode(t, Config{ResumeWindow: 300 * time.Millisecond, DisablePathMonitor: true})
	r := relaytest.New(t, b.Addr().String())
	ctx := ctxT(t)
	ca, _ := pairAt(t, a, b, r.Addr())
	r.Fin()
	_, err := ca.ReceiveMessage(ctx)
	var sl *SessionLostError
	if !errors.As(err, &sl) {
		t.Fatalf("ReceiveMessage after the transport ended: %v; want a SessionLostError", err)
	}
	if errors.Is(err, io.EOF) {
		t.Fatalf("errors.Is(%v, io.EOF) = true: a lost session reads as a clean close", err)
	}
}

// After a resume, Peer().Addr is the new transport connection's address
// (it used to stay the first one's, which is wrong once the peer moved).
func TestResumeUpdatesPeerAddr(t *testing.T) {
	va := newViabilityLog()
	vb := newViabilityLog()
	a := newNode(t, Config{OnViability: va.record, DisablePathMonitor: true})
	b := newNode(t, Config{OnViability: vb.record, DisablePathMonitor: true})
	ca, cb := pair(t, a, b)
	before := cb.Peer().Addr.String()
	ca.Restart()
	va.wait(t, Reconnected)
	vb.wait(t, Reconnected)
	if after := cb.Peer().Addr.String(); after == before {
		t.Fatalf("listener's Peer().Addr still %s after the dialer reconnected from a new port", before)
	}
}

// A blip: the path goes silent (keepalives unanswered), then the transport
// is reset, as when one end timed out and its host answers the other's
// retransmission once the path is back. The session waits for the whole
// ResumeWindow, not only DropTime (kept for a reset of a transport that
// carried traffic: the peer's process is likely gone), and resumes when the
// path heals. (It used to fail after DropTime, as chat did in e2e's
// TestLinkCutResumes.)
func TestResetAfterSilenceResumes(t *testing.T) {
	cfg := Config{KeepAliveIdle: 50 * time.Millisecond, KeepAliveInterval: 20 * time.Millisecond, KeepAliveCount: 2,
		DropTime: 300 * time.Millisecond, ResumeWindow: 20 * time.Second, DisablePathMonitor: true}
	va, vb := newViabilityLog(), newViabilityLog()
	cfgA, cfgB := cfg, cfg
	cfgA.OnViability, cfgB.OnViability = va.record, vb.record
	a, b := newNode(t, cfgA), newNode(t, cfgB)
	r := relaytest.New(t, b.Addr().String())
	ctx := ctxT(t)
	ca, cb := pairAt(t, a, b, r.Addr())
	r.Pause()
	va.wait(t, Inviable)
	vb.wait(t, Inviable)
	r.Cut()                      // both ends see a reset
	time.Sleep(3 * cfg.DropTime) // longer than DropTime, which used to end both Conns here
	r.Heal()
	r.Resume()
	va.wait(t, Reconnected)
	vb.wait(t, Reconnected)
	sendOne(t, ctx, ca, cb, "after")
}

// A dialer that never browsed (it connected by address) learns from
// discovery where a peer it cannot reach any more now listens: here the
// path through a relay breaks for good and the peer is still advertised at
// its own address. (The redial used to try only the addresses it knew.)
func TestRedialRediscovers(t *testing.T) {
	const svc = "_nnredial._tcp"
	lo := []string{"lo"}
	a := newNode(t, Config{Service: svc, Interfaces: lo, DisablePathMonitor: true})
	b, err := NewNode(&Config{Key: testKey, ListenAddr: "127.0.0.1:0", Service: svc, Interfaces: lo, DisablePathMonitor: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := ctxT(t)
	if err := b.Listen(ctx); err != nil { // advertises b at its own address
		t.Fatal(err)
	}
	va := newViabilityLog()
	a.cfg.OnViability = va.record
	r := relaytest.New(t, b.Addr().String())
	ca, cb := pairAt(t, a, b, r.Addr())
	r.Cut() // the relay resets from now on: never refused, never through
	va.wait(t, Reconnected)
	sendOne(t, ctx, ca, cb, "found again")
}

// SendMessage right after the transport broke returns at once, logging the
// message, rather than waiting for the session to resume: it used to wait
// when it caught the link after it failed and before the Conn suspended
// (the link's end did not wake it). Each message then either arrives or is
// listed as undelivered.
func TestSendDuringBreakDoesNotBlock(t *testing.T) {
	for i := 0; i < 5; i++ {
		a := newNode(t, Config{ResumeWindow: 20 * time.Second, DisablePathMonitor: true})
		b := newNode(t, Config{ResumeWindow: 20 * time.Second, DisablePathMonitor: true})
		r := relaytest.New(t, b.Addr().String())
		ctx := ctxT(t)
		ca, _ := pairAt(t, a, b, r.Addr())
		r.Cut()
		// No heal until the sends return: a send waiting for the resume
		// waits until this deadline.
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for j := 0; j < 3; j++ {
			if err := ca.SendMessage(sctx, []byte("during")); err != nil {
				cancel()
				t.Fatalf("round %d: SendMessage %d during the break: %v", i, j, err)
			}
		}
		cancel()
		r.Close()
	}
}
