package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/budget"
	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/mem"
	"github.com/nearnet/nearnet/internal/wire"
)

// Tests of the Session over the in-memory transport: real links (the link
// protocol, its reader and writer) on pipes, a test owner in place of the
// node, and a clock the test advances, so that resume windows and
// debounces are steps of the test rather than sleeps.

// lockedClock is a fakeClock safe for the links' goroutines, which start
// ack and linger timers; advance runs due timers outside its lock.
type lockedClock struct {
	mu sync.Mutex
	c  fakeClock
}

func (c *lockedClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &lockedTimer{c, c.c.AfterFunc(d, f).(*fakeTimer)}
}

type lockedTimer struct {
	c *lockedClock
	t *fakeTimer
}

func (t *lockedTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.t.Stop()
}

func (t *lockedTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.t.Reset(d)
}

// advance moves time on by d and runs the timers due, in order, with no
// lock held.
func (c *lockedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.c.now += d
	var due []*fakeTimer
	slices.SortStableFunc(c.c.timers, func(a, b *fakeTimer) int { return int(a.at - b.at) })
	for len(c.c.timers) > 0 && c.c.timers[0].at <= c.c.now {
		t := c.c.timers[0]
		c.c.timers = c.c.timers[1:]
		if !t.stopped {
			t.stopped = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// lostError stands for the root's SessionLostError.
type lostError struct {
	err         error
	undelivered [][]byte
}

func (e *lostError) Error() string {
	return fmt.Sprintf("lost (%d undelivered): %v", len(e.undelivered), e.err)
}

var errTestClosed = errors.New("closed")

// testOwner stands for the node: it records states and viability, and
// redials through a function of the test.
type testOwner struct {
	mu     sync.Mutex
	states []Kind
	via    []ViabilityKind
	redial func(ctx context.Context, addr string) (bool, error)
}

func (o *testOwner) StateChanged(s State) {
	o.mu.Lock()
	o.states = append(o.states, s.Kind)
	o.mu.Unlock()
}

func (o *testOwner) ViabilityChanged(k ViabilityKind, _ error) {
	o.mu.Lock()
	o.via = append(o.via, k)
	o.mu.Unlock()
}

func (o *testOwner) Attached(*Path)                           {}
func (o *testOwner) Ended(State, []string)                    {}
func (o *testOwner) Rediscover(context.Context)               {}
func (o *testOwner) StreamRefused(*wire.StreamRefused)        {}
func (o *testOwner) StreamRequest(*Path, *wire.StreamRequest) {}

func (o *testOwner) RedialRound(ctx context.Context, addr string) (bool, error) {
	o.mu.Lock()
	f := o.redial
	o.mu.Unlock()
	if f == nil {
		<-ctx.Done()
		return false, ctx.Err()
	}
	return f(ctx, addr)
}

func (o *testOwner) viability() []ViabilityKind {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.via)
}

// side is one peer of a test: its session, owner, config and transport.
type side struct {
	id    [16]byte
	boot  string
	s     *Session
	owner *testOwner
	cfg   *Config
	tr    *mem.Transport
	acc   chan transport.Conn
	ln    transport.Listener
}

type acceptor chan transport.Conn

func (a acceptor) HandleConn(c transport.Conn, _ time.Time) { a <- c }
func (a acceptor) HandleFailure(net.Addr, error)            {}

var testLinkCfg = link.Config{MaxMessageSize: 1 << 20, SendBuffer: 1 << 20, CloseTimeout: 5 * time.Second,
	KeepAliveIdle: time.Hour, KeepAliveInterval: time.Hour, KeepAliveCount: 3}

// world is two peers a and b on an in-memory network, each with a
// session to the other (not yet with a link), sharing a test clock.
type world struct {
	t     *testing.T
	nw    *mem.Network
	clock *lockedClock
	a, b  *side
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, nw: mem.NewNetwork(), clock: &lockedClock{}}
	w.a = w.side(t, 'a')
	w.b = w.side(t, 'b')
	w.a.s = New(w.a.cfg, w.a.owner, Peer{ID: w.b.id}, Ready, false)
	w.b.s = New(w.b.cfg, w.b.owner, Peer{ID: w.a.id}, Ready, true)
	w.a.s.SetPeerBoot(w.b.boot)
	w.b.s.SetPeerBoot(w.a.boot)
	t.Cleanup(func() {
		for _, x := range []*side{w.a, w.b} {
			x.s.Abort(errors.New("test over"))
			<-x.s.Done()
			x.ln.Close()
			x.tr.Close()
		}
	})
	return w
}

func (w *world) side(t *testing.T, c byte) *side {
	x := &side{boot: strings.Repeat(string(c), 16), owner: &testOwner{}, acc: make(chan transport.Conn, 4)}
	copy(x.id[:], strings.Repeat(string(c), 16))
	x.cfg = &Config{
		Clock: w.clock, ReceiveBuffer: 1 << 20, SendBuffer: 1 << 20,
		HandshakeTimeout: 10 * time.Second, ResumeWindow: 30 * time.Second, DropTime: 10 * time.Second,
		ViabilityDebounce: 250 * time.Millisecond, NodeDone: make(chan struct{}),
		ErrClosed:     errTestClosed,
		FromTransport: func(err error) error { return err },
		CloseError:    func(code int, reason string) error { return fmt.Errorf("closed %d %s", code, reason) },
		PeerError:     func(code int, reason string) error { return fmt.Errorf("peer error %d %s", code, reason) },
		Lost:          func(err error, un [][]byte) error { return &lostError{err, un} },
	}
	x.tr = w.nw.Transport(mem.Options{})
	ln, err := x.tr.Listen(context.Background(), "mem:0", acceptor(x.acc))
	if err != nil {
		t.Fatal(err)
	}
	x.ln = ln
	return x
}

// connect makes a handshaken link from "from" to "to" and returns both
// ends (not attached). A link dialed to resume (resume) carries resume
// offers as the node's hellos do; a fresh dial carries none.
func (w *world) connect(ctx context.Context, from, to *side, resume bool) (out, in *Path, err error) {
	tc, err := from.tr.Dial(ctx, to.ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	var sc transport.Conn
	select {
	case sc = <-to.acc:
	case <-ctx.Done():
		tc.Close()
		return nil, nil, ctx.Err()
	}
	out, in = NewPath(tc, nil, true, &testLinkCfg), NewPath(sc, nil, false, &testLinkCfg)
	out.Dialed = to.ln.Addr().String()
	hello := func(x *side) []byte {
		b, _ := wire.AppendHello(nil, &wire.Hello{Version: 1, Peer: strings.Repeat("0", 32), Boot: x.boot})
		return b
	}
	dl := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	out.SetDeadline(dl)
	in.SetDeadline(dl)
	errc := make(chan error, 1)
	go func() {
		err := in.AcceptUpgrade()
		if err == nil {
			_, err = in.ReadHello()
		}
		if err == nil {
			err = in.SendHello(hello(to))
		}
		errc <- err
	}()
	err = out.SendUpgrade("peer:1", hello(from))
	if err == nil {
		err = out.ReadUpgradeResponse()
	}
	if err == nil {
		_, err = out.ReadHello()
	}
	if serr := <-errc; err == nil || serr != nil {
		err = serr
	}
	if err != nil {
		out.Drop()
		in.Drop()
		return nil, nil, err
	}
	out.SetDeadline(time.Time{})
	in.SetDeadline(time.Time{})
	out.Peer, in.Peer = Peer{ID: to.id}, Peer{ID: from.id}
	out.PeerBoot, in.PeerBoot = to.boot, from.boot
	if resume {
		out.ResumeFor = from.s
		out.MyResume = from.s.ResumeOffer(out)
		in.PeerResume = out.MyResume
		in.MyResume = to.s.ResumeOffer(in)
		out.PeerResume = in.MyResume
	}
	return out, in, nil
}

// attach attaches a link end to its side's session as the node does:
// Admit, then Attach.
func attach(t testing.TB, x *side, l *Path) {
	resume, over := x.s.Admit(l, x.boot)
	if over {
		t.Errorf("%s: link does not continue the session", x.boot)
		return
	}
	if ok, _ := x.s.Attach(l, resume); !ok {
		t.Errorf("%s: session ended before the link attached", x.boot)
	}
}

// link makes a link a→b and attaches both ends.
func (w *world) link(from, to *side) (out, in *Path) {
	w.t.Helper()
	out, in, err := w.connect(context.Background(), from, to, false)
	if err != nil {
		w.t.Fatal(err)
	}
	attach(w.t, from, out)
	attach(w.t, to, in)
	return out, in
}

// receiveAll takes n messages from s and checks they are "m0", "m1", ...
// from first on: in order, none lost or duplicated.
func receiveAll(t *testing.T, s *Session, first, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := first; i < first+n; i++ {
		m, err := s.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprint("m", i); string(m) != want {
			t.Fatalf("got %q, want %q", m, want)
		}
	}
}

func send(t *testing.T, s *Session, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.SendMessage(context.Background(), fmt.Append(nil, "m", i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// waitFor polls cond (bounded): the sessions' goroutines settle on their
// own time, and no assertion depends on how long they take.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 2000 {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A cut link resumed: a's link to b breaks with messages in flight; a is
// suspended, logs what it sends meanwhile and redials; the new link
// resumes the session on both sides from the counts the hellos carry.
// b receives every message once, in order.
func TestSessionCutResumed(t *testing.T) {
	w := newWorld(t)
	w.link(w.a, w.b)
	send(t, w.a.s, 0, 50)
	receiveAll(t, w.b.s, 0, 20)

	redialed := make(chan struct{})
	w.a.owner.redial = func(ctx context.Context, addr string) (bool, error) {
		<-redialed // the test lets it in once both sides are suspended
		out, in, err := w.connect(ctx, w.a, w.b, true)
		if err != nil {
			return false, err
		}
		attach(t, w.b, in)
		attach(t, w.a, out)
		return false, nil
	}
	w.nw.Cut(w.b.ln.Addr().String())
	waitFor(t, "both sides suspended", func() bool { return w.a.s.Suspended() && w.b.s.Suspended() })
	send(t, w.a.s, 50, 80) // logged while suspended
	if w.a.s.Viable() {
		t.Error("viable while suspended")
	}
	close(redialed)
	receiveAll(t, w.b.s, 20, 60)
	waitFor(t, "a resumed", func() bool { return !w.a.s.Suspended() })
	send(t, w.a.s, 80, 90)
	receiveAll(t, w.b.s, 80, 10)
	if got := w.a.owner.viability(); !slices.Contains(got, Reconnected) {
		t.Errorf("a's viability reports %v, want Reconnected among them", got)
	}
	// b's acks trim a's log: once b took everything, a holds nothing.
	w.clock.advance(AckDelay)
	waitFor(t, "a's log trimmed", func() bool { return w.a.s.Unacked() == 0 })
}

// A failover between two links: a second link joins while the first
// carries messages; duplicate resolution retires one of the two on both
// sides alike, and the messages sent across the change arrive once, in
// order. Then the surviving link carries on alone.
func TestSessionFailoverBetweenLinks(t *testing.T) {
	w := newWorld(t)
	first, _ := w.link(w.a, w.b)
	send(t, w.a.s, 0, 30)
	second, _ := w.link(w.a, w.b)
	send(t, w.a.s, 30, 60)
	receiveAll(t, w.b.s, 0, 60)
	waitFor(t, "one link left on each side", func() bool {
		return len(w.a.s.Paths()) == 1 && len(w.b.s.Paths()) == 1
	})
	survivor := w.a.s.Paths()[0]
	if survivor != first && survivor != second {
		t.Fatal("the surviving link is neither of the two")
	}
	if w.b.s.Paths()[0].Key() != survivor.Key() {
		t.Fatal("the two sides kept different links")
	}
	send(t, w.a.s, 60, 70)
	receiveAll(t, w.b.s, 60, 10)
	if st, _ := w.a.s.State(); st.Kind != Ready {
		t.Fatalf("a is %v after the failover", st.Kind)
	}
}

// Simultaneous opens: both sides dial each other at once, and each
// attaches its two links in the order its own dial and accept finished
// (here: opposite orders). Both keep the same link, and messages sent
// both ways meanwhile arrive once, in order; a sender whose only link the
// peer dropped as the duplicate waits for the successor.
func TestSessionSimultaneousOpen(t *testing.T) {
	for _, aFirst := range []bool{true, false} {
		t.Run(fmt.Sprint("aOutFirst=", aFirst), func(t *testing.T) {
			w := newWorld(t)
			ab, abIn, err := w.connect(context.Background(), w.a, w.b, false)
			if err != nil {
				t.Fatal(err)
			}
			ba, baIn, err := w.connect(context.Background(), w.b, w.a, false)
			if err != nil {
				t.Fatal(err)
			}
			if aFirst {
				attach(t, w.a, ab)
				attach(t, w.a, baIn)
			} else {
				attach(t, w.a, baIn)
				attach(t, w.a, ab)
			}
			send(t, w.a.s, 0, 10)
			attach(t, w.b, ba) // b: the other order
			// b's sender may find its only link dropped as the duplicate
			// by a: it waits for the successor, which comes next.
			sent := make(chan error, 1)
			go func() {
				for i := range 10 {
					if err := w.b.s.SendMessage(context.Background(), fmt.Append(nil, "m", i)); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			attach(t, w.b, abIn)
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			send(t, w.a.s, 10, 20)
			send(t, w.b.s, 10, 20)
			receiveAll(t, w.b.s, 0, 20)
			receiveAll(t, w.a.s, 0, 20)
			waitFor(t, "one link left on each side", func() bool {
				return len(w.a.s.Paths()) == 1 && len(w.b.s.Paths()) == 1
			})
			if ka, kb := w.a.s.Paths()[0].Key(), w.b.s.Paths()[0].Key(); ka != kb {
				t.Fatalf("a kept link %s, b kept %s", ka, kb)
			}
		})
	}
}

// A peer that never answers: b's host is gone from the network (silent,
// not refusing). a is suspended and redials in vain; when the wait passes,
// a fails with the session lost, listing the messages b never
// acknowledged, in order. (The link ended with a reset while traffic got
// through, so its peer's process may be gone: the wait is DropTime, not
// the whole resume window.)
func TestSessionPeerNeverAnswers(t *testing.T) {
	w := newWorld(t)
	w.link(w.a, w.b)
	send(t, w.a.s, 0, 5)
	receiveAll(t, w.b.s, 0, 5)
	w.clock.advance(AckDelay) // b acks the five
	waitFor(t, "the ack", func() bool { return w.a.s.Unacked() == 0 })

	w.a.owner.redial = func(ctx context.Context, addr string) (bool, error) {
		_, _, err := w.connect(ctx, w.a, w.b, true) // no answer until ctx ends
		return false, err
	}
	w.nw.Partition(w.b.ln.Addr().String())
	waitFor(t, "a suspended", w.a.s.Suspended)
	send(t, w.a.s, 5, 8)
	w.clock.advance(w.a.cfg.DropTime - time.Second)
	if st, _ := w.a.s.State(); st.Terminal() {
		t.Fatalf("a ended before DropTime: %v", st)
	}
	w.clock.advance(2 * time.Second)
	st, _ := w.a.s.State()
	if st.Kind != Failed {
		t.Fatalf("a is %v after DropTime, want failed", st.Kind)
	}
	var lost *lostError
	if !errors.As(st.Err, &lost) {
		t.Fatalf("a failed with %v, want the session lost", st.Err)
	}
	var got []string
	for _, m := range lost.undelivered {
		got = append(got, string(m))
	}
	if want := []string{"m5", "m6", "m7"}; !slices.Equal(got, want) {
		t.Fatalf("undelivered %q, want %q", got, want)
	}
	if err := w.a.s.SendMessage(context.Background(), []byte("after")); !errors.As(err, &lost) {
		t.Fatalf("SendMessage after the loss: %v", err)
	}
}

// The keepalive and the path monitor clear a link's two inviability flags
// concurrently; whichever reports last must find both clear. (Each used to
// pass in a viability computed before taking the Conn's lock, so the path
// monitor's stale "still inviable" could land after the keepalive's
// "viable": the CLI's TestLinkCutResumes saw a link stay inviable after a
// cut its transport survived.) Moved here from the root's tests.
func TestViabilityFlagsClearInEitherOrder(t *testing.T) {
	w := newWorld(t)
	l, _ := w.link(w.a, w.b)
	l.SetInviable(true, true)
	w.a.s.linkViability(l, errNoPath)
	if w.a.s.Viable() {
		t.Fatal("viable with the path down and keepalives unanswered")
	}
	// The interleaving that lost the update: the path monitor clears
	// pathDown, the keepalive clears kaInviable and reports, then the path
	// monitor reports.
	l.SetInviable(false, false)
	w.a.s.linkViability(l, nil)
	w.a.s.linkViability(l, errNoPath)
	if !w.a.s.Viable() {
		t.Fatal("inviable although neither the path nor the keepalive says so")
	}
}

// A resume that needs messages the sender's log forgot (under the memory
// budget) ends the session on both sides with a lost-session error, 4008
// on the wire: nothing is lost silently or delivered twice.
func TestSessionResumeFromForgottenIsLost(t *testing.T) {
	w := newWorld(t)
	w.link(w.a, w.b)
	send(t, w.a.s, 0, 20)
	receiveAll(t, w.b.s, 0, 20)
	w.clock.advance(AckDelay)
	waitFor(t, "b's ack", func() bool { return w.a.s.Unacked() == 0 })

	redialed := make(chan struct{})
	w.a.owner.redial = func(ctx context.Context, addr string) (bool, error) {
		<-redialed
		out, in, err := w.connect(ctx, w.a, w.b, true)
		if err != nil {
			return false, err
		}
		attach(t, w.b, in)
		attach(t, w.a, out)
		return false, nil
	}
	w.nw.Cut(w.b.ln.Addr().String())
	waitFor(t, "both sides suspended", func() bool { return w.a.s.Suspended() && w.b.s.Suspended() })
	send(t, w.a.s, 20, 30) // logged while suspended, then forgotten
	w.a.s.txmu.Lock()
	if !w.a.s.tx.Yield() || w.a.s.tx.Forgotten() != 10 {
		t.Errorf("the log forgot %d messages, want 10", w.a.s.tx.Forgotten())
	}
	w.a.s.txmu.Unlock()
	close(redialed)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, x := range []*side{w.a, w.b} {
		_, err := x.s.ReceiveMessage(ctx)
		var lost *lostError
		if !errors.As(err, &lost) {
			t.Fatalf("%s: %v, want a lost session", x.boot[:1], err)
		}
		t.Logf("%s: %v", x.boot[:1], err)
		if !strings.Contains(err.Error(), "4008") && !strings.Contains(err.Error(), "not kept for resume") {
			t.Errorf("%s: %v does not say why", x.boot[:1], err)
		}
	}
	if err := w.a.s.SendMessage(ctx, []byte("after")); err == nil {
		t.Error("a sends on a lost session")
	}
}

// The log gives way to the budget: refused, it forgets its oldest
// messages; empty and refused, a message goes unlogged (Skip); acks
// before what it forgot are no error, and a resume can tell forgotten
// from acknowledged.
func TestLogGivesWay(t *testing.T) {
	b := budget.New(4 * budget.Chunk)
	var l Log
	l.SetAccount(budget.NewAccount(b))
	for i := range 3 {
		if !l.Reserve(budget.Chunk) {
			t.Fatalf("message %d refused", i)
		}
		l.Add(make([]byte, budget.Chunk))
	}
	// A fourth would leave less than the log holds: the oldest go.
	if !l.Reserve(budget.Chunk) {
		t.Fatal("refused after forgetting")
	}
	l.Add(make([]byte, budget.Chunk))
	if l.Base() == 0 || l.Acked() != 0 || l.Forgotten() != l.Base() || l.Next() != 4 {
		t.Fatalf("base %d acked %d forgotten %d next %d", l.Base(), l.Acked(), l.Forgotten(), l.Next())
	}
	if b.Used() > b.Limit() {
		t.Fatalf("over the budget: %d of %d", b.Used(), b.Limit())
	}
	if err := l.AckTo(1); err != nil || l.Acked() != 1 {
		t.Fatalf("an ack of a forgotten message: %v, acked %d", err, l.Acked())
	}
	if l.Yield(); l.Base() != 4 || len(l.Unacked()) != 0 {
		t.Fatalf("after Yield: base %d, %d kept", l.Base(), len(l.Unacked()))
	}
	l.Skip()
	if l.Next() != 5 || l.Forgotten() != 4 {
		t.Fatalf("after Skip: next %d forgotten %d", l.Next(), l.Forgotten())
	}
	if err := l.AckTo(6); err == nil {
		t.Fatal("an ack beyond what was sent is no error")
	}
	l.CloseAccount()
	if b.Used() != 0 {
		t.Fatalf("after CloseAccount the budget counts %d", b.Used())
	}
}
