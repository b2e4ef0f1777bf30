package nearnet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/netns"
	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/transport/ice/icetest"
)

// iceNodeOn makes a node on host h with ICE servers, its agents' sockets
// and its LAN redials in h's namespace, listening there on TCP.
func iceNodeOn(t *testing.T, h *netns.Host, servers []ICEServer, events chan<- ViabilityEvent, opts ...func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		Transport: TransportTCP, Key: testKey, Hidden: true, ICEServers: servers,
		ListenAddr:         net.JoinHostPort(h.Addr().String(), "0"),
		DisablePathMonitor: true, DisableDatagrams: true,
		// Inviable after about 1 s of silence (idle, then one unanswered
		// ping), well before the 2 s drop: the session moves to its ICE
		// path then.
		DropTime: 2 * time.Second, KeepAliveIdle: 500 * time.Millisecond, KeepAliveCount: 1,
		Logger: iceTestLogger(h.Name),
		OnStateChange: func(c *Conn, s State) {
			t.Logf("%s: state %v %v", h.Name, s.Kind, s.Err)
		},
		OnViability: func(c *Conn, e ViabilityEvent) {
			t.Logf("%s: %v %v %+v", h.Name, e.Kind, e.Err, e.Path)
			if e.Kind != Viable {
				events <- e
			}
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := NewNode(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	pn, err := icetest.NewNet(h)
	if err != nil {
		t.Fatal(err)
	}
	n.ice.SetNet(pn, h.Do)
	if err := h.Do(func() error { return n.Listen(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitPath waits until c's ICE path stands by.
func waitPath(t *testing.T, ctx context.Context, n *Node, c *Conn) {
	t.Helper()
	for ctx.Err() == nil {
		if n.ice.Ready(c.s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no ICE path stood by")
}

// waitReconnected waits for the next Reconnected event (skipping
// PathUnavailable ones).
func waitReconnected(t *testing.T, ctx context.Context, events <-chan ViabilityEvent, who string) ViabilityEvent {
	t.Helper()
	for {
		select {
		case e := <-events:
			if e.Kind == Reconnected {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("%s: no Reconnected event", who)
		}
	}
}

// TestSessionMovesBeyondLAN: alice and bob share home A's LAN and run a
// session over it; their nodes prepare an ICE path over the session.
// "moves": bob leaves for home B (new address, behind another NAT) and
// comes back. "dual-homed": bob also has an uplink through home B (a
// phone's mobile data) and his LAN link is cut and restored; the session
// resumes over the standing ICE path (direct through both NATs, or
// relayed through coturn when rb's NAT randomises ports). Either way it
// returns to the LAN; messages sent all along arrive exactly once, in
// order, and the events name the path and its RTT. "server-errors": wrong
// TURN credentials and a dead STUN server are typed PathUnavailable
// events while the LAN works on; "no-path": both NATs randomise ports
// and no TURN server, ErrNoICEPath on both sides. "turn-down-direct": coturn killed (and
// started again) while the session runs on a direct path costs nothing.
// "turn-stopped-relayed": coturn stopped while the session runs through
// it makes it inviable and suspended; it resumes when coturn goes on.
func TestSessionMovesBeyondLAN(t *testing.T) {
	in := netns.NewInternet(t)
	turn := in.StartTURN(t, "nearnet", "6b1f0c2e9a")
	servers := testICEServers("nearnet", "6b1f0c2e9a")
	t.Run("server-errors", func(t *testing.T) {
		// Wrong TURN credentials and a STUN server where nothing
		// listens: each a PathUnavailable event with a typed error
		// naming the server, and the LAN session works on.
		dead := netns.PublicAddr.String() + ":3479"
		bad := []ICEServer{
			{URL: "turn:" + netns.PublicAddr.String() + ":3478", Username: "nearnet", Password: "wrong-9f8e7d"},
			{URL: "stun:" + dead},
		}
		runServerErrors(t, in, bad)
	})
	t.Run("no-path", func(t *testing.T) {
		// Both NATs randomise ports and there is no TURN server: the
		// checks find no pair, a PathUnavailable event with ErrNoICEPath
		// on both sides once they give up (ICE's timeout is the resume
		// window, 3 s here), and the LAN works on.
		in.SetNAT(t, in.RA, netns.NATRandom)
		in.SetNAT(t, in.RB, netns.NATRandom)
		defer in.SetNAT(t, in.RA, netns.NATKeepPorts)
		defer in.SetNAT(t, in.RB, netns.NATKeepPorts)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		ca, cb, aev, bev := lanPair(t, ctx, in, []ICEServer{{URL: "stun:" + netns.PublicAddr.String() + ":3478"}}, shortResume)
		for _, side := range []struct {
			name   string
			events <-chan ViabilityEvent
		}{{"alice", aev}, {"bob", bev}} {
			e := nextUnavailable(t, ctx, side.events, side.name)
			t.Logf("%s after %v: %v", side.name, time.Since(start).Round(time.Millisecond), e.Err)
			if !errors.Is(e.Err, ErrNoICEPath) {
				t.Fatalf("%s: %v; want ErrNoICEPath", side.name, e.Err)
			}
		}
		lanWorks(t, ctx, ca, cb)
	})
	t.Run("moves", func(t *testing.T) {
		// Bob leaves home A for home B (a new address behind another NAT)
		// and comes back: no pair of the ICE exchange survives the move,
		// so he knocks on alice's TURN mailbox from his new network and
		// the session resumes relayed through it.
		// A new exchange over that path then finds a direct one (both NATs
		// keep ports), and the session moves to it.
		runMove(t, in, servers, netns.NATKeepPorts, in.MoveToB, in.MoveToA, PathRelayed, PathDirect)
	})
	if err := in.DualHomeB(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		nat  netns.NAT
		want PathKind
	}{
		{"dual-homed-direct", netns.NATKeepPorts, PathDirect},
		{"dual-homed-relayed", netns.NATRandom, PathRelayed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runMove(t, in, servers, tc.nat, in.B.LinkDown, in.B.LinkUp, tc.want)
		})
	}
	t.Run("turn-down-direct", func(t *testing.T) {
		// The session runs on a direct path (bob's LAN link cut): coturn
		// going down costs nothing; it is started again after.
		runOutage(t, in, servers, netns.NATKeepPorts, PathDirect, turn.Stop, func() error { turn.Start(t); return nil })
	})
	t.Run("turn-restarted-standby", func(t *testing.T) {
		// The session runs on the LAN with a relayed path standing by
		// (rb randomises ports); coturn restarts and loses the
		// allocation: once ICE gives up on that path (the resume window,
		// 3 s here), alice exchanges again and a new relayed path stands
		// by.
		in.SetNAT(t, in.RB, netns.NATRandom)
		defer in.SetNAT(t, in.RB, netns.NATKeepPorts)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ca, cb, _, _ := lanPair(t, ctx, in, servers, shortResume)
		na := ca.n
		standby := func(old any) *ice.Path {
			for ctx.Err() == nil {
				if p := na.ice.StandbyPath(ca.s); p != nil && any(p) != old && p.Info().Kind == ice.Relayed {
					return p
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Fatal("no relayed path stood by")
			return nil
		}
		p0 := standby(nil)
		if err := turn.Stop(); err != nil {
			t.Fatal(err)
		}
		turn.Start(t)
		start := time.Now()
		p1 := standby(p0)
		t.Logf("a new path stood by %v after coturn restarted: %+v", time.Since(start).Round(time.Millisecond), p1.Info())
		lanWorks(t, ctx, ca, cb)
	})
	t.Run("turn-stopped-relayed", func(t *testing.T) {
		// The session runs through coturn (rb randomises ports): coturn
		// stopped (SIGSTOP, its allocations kept) makes the session
		// inviable, and its link breaks; once coturn goes on, well within
		// the resume window, the session resumes on the relayed path.
		runOutage(t, in, servers, netns.NATRandom, PathRelayed, turn.Freeze, turn.Thaw)
	})
}

func testICEServers(user, pass string) []ICEServer {
	pub := netns.PublicAddr.String() + ":3478"
	return []ICEServer{
		{URL: "stun:" + pub},
		{URL: "turn:" + pub + "?transport=udp", Username: user, Password: pass},
	}
}

// runMove connects alice to bob over home A's LAN, sends messages before,
// during and after leave() and back(), and checks that they all arrive
// exactly once and in order, that the session resumed on a path of kind
// want after leave and on the LAN after back.
func runMove(t *testing.T, in *netns.Internet, servers []ICEServer, nat netns.NAT, leave, back func() error, want PathKind, then ...PathKind) {
	in.SetNAT(t, in.RB, nat)
	defer in.SetNAT(t, in.RB, netns.NATKeepPorts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ca, cb, aev, bev := lanPair(t, ctx, in, servers)
	na, nb := ca.n, cb.n
	waitPath(t, ctx, na, ca)
	waitPath(t, ctx, nb, cb)

	const batch, total = 100, 300
	// send sends messages from..to-1 at a chat's pace, so that they go
	// out while the path changes.
	send := func(from, to int) <-chan error {
		errc := make(chan error, 1)
		go func() {
			for i := from; i < to; i++ {
				if err := ca.SendMessage(ctx, []byte(strconv.Itoa(i))); err != nil {
					errc <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			errc <- nil
		}()
		return errc
	}
	recvd := make(chan error, 1)
	var gaps []time.Duration // between one message's arrival and the next's: a path switch shows as a gap
	go func() {
		last := time.Now()
		for i := range total {
			m, err := cb.ReceiveMessage(ctx)
			if err != nil {
				recvd <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			if string(m) != strconv.Itoa(i) {
				recvd <- fmt.Errorf("message %d is %q: lost, duplicated or out of order", i, m)
				return
			}
			gaps = append(gaps, time.Since(last))
			last = time.Now()
		}
		recvd <- nil
	}()
	defer func() {
		if len(gaps) == total {
			slices.SortFunc(gaps, func(a, b time.Duration) int { return cmp.Compare(b, a) })
			t.Logf("path switch delay: the longest gaps between messages sent every 5 ms were %v (drop time 2s)", gaps[:3])
		}
	}()
	if err := <-send(0, batch); err != nil {
		t.Fatal(err)
	}

	if err := leave(); err != nil {
		t.Fatal(err)
	}
	moving := send(batch, 2*batch)
	ea := waitReconnected(t, ctx, aev, "alice")
	eb := waitReconnected(t, ctx, bev, "bob")
	t.Logf("left: alice now on %+v (Conn.Path %+v), bob on %+v", ea.Path, ca.Path(), eb.Path)
	if ea.Path.Kind != want || eb.Path.Kind != want {
		t.Fatalf("resumed on %v / %v, want %v", ea.Path.Kind, eb.Path.Kind, want)
	}
	if ea.Path.RTT <= 0 || eb.Path.RTT <= 0 {
		t.Errorf("no round-trip time for the path: %v / %v", ea.Path.RTT, eb.Path.RTT)
	}
	for _, k := range then {
		for _, side := range []struct {
			name   string
			events <-chan ViabilityEvent
		}{{"alice", aev}, {"bob", bev}} {
			e := waitReconnected(t, ctx, side.events, side.name)
			t.Logf("then: %s on %+v", side.name, e.Path)
			if e.Path.Kind != k {
				t.Fatalf("%s moved to %v, want %v", side.name, e.Path.Kind, k)
			}
		}
	}
	if err := <-moving; err != nil {
		t.Fatal(err)
	}

	if err := back(); err != nil {
		t.Fatal(err)
	}
	returning := send(2*batch, total)
	// The session may pass through another path first (the relayed path
	// bob knocked open dies as he leaves home B, and the ICE path of home
	// A answers again before the LAN does): it ends on the LAN.
	for _, side := range []struct {
		name   string
		events <-chan ViabilityEvent
	}{{"alice", aev}, {"bob", bev}} {
		for {
			e := waitReconnected(t, ctx, side.events, side.name)
			t.Logf("back: %s on %+v", side.name, e.Path)
			if e.Path.Kind == PathLAN {
				break
			}
		}
	}
	if ca.Path().Kind != PathLAN || cb.Path().Kind != PathLAN {
		t.Fatalf("back on %v / %v, want the LAN", ca.Path(), cb.Path())
	}
	if err := <-returning; err != nil {
		t.Fatal(err)
	}
	if err := <-recvd; err != nil {
		t.Fatal(err)
	}
}

func iceTestLogger(name string) *slog.Logger {
	if os.Getenv("NEARNET_ICE_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", name)
}

// lanPair connects alice to bob over home A's LAN, their nodes with the
// ICE servers given and a resume window (the bound of ICE's checks) of
// 3 s, and returns both Conns and their viability events.
func lanPair(t *testing.T, ctx context.Context, in *netns.Internet, servers []ICEServer, opts ...func(*Config)) (ca, cb *Conn, aev, bev chan ViabilityEvent) {
	t.Helper()
	aev, bev = make(chan ViabilityEvent, 64), make(chan ViabilityEvent, 64)
	na := iceNodeOn(t, in.A, servers, aev, opts...)
	nb := iceNodeOn(t, in.B, servers, bev, opts...)
	_, port, _ := net.SplitHostPort(nb.Addr().String())
	if err := in.A.Do(func() error {
		var err error
		ca, err = na.Connect(ctx, net.JoinHostPort(in.B.Addr().String(), port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cb, err := nb.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cb, aev, bev
}

// shortResume: ICE gives up after the resume window, 3 s here.
var shortResume = func(c *Config) { c.ResumeWindow = 3 * time.Second }

// nextUnavailable returns the next PathUnavailable event (skipping
// viability changes).
func nextUnavailable(t *testing.T, ctx context.Context, events <-chan ViabilityEvent, who string) ViabilityEvent {
	t.Helper()
	for {
		select {
		case e := <-events:
			if e.Kind == PathUnavailable {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("%s: no PathUnavailable event", who)
		}
	}
}

// lanWorks checks that a message goes each way and that ca runs on the
// LAN.
func lanWorks(t *testing.T, ctx context.Context, ca, cb *Conn) {
	t.Helper()
	for i, pair := range [][2]*Conn{{ca, cb}, {cb, ca}} {
		msg := []byte("over the LAN " + strconv.Itoa(i))
		if err := pair[0].SendMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
		m, err := pair[1].ReceiveMessage(ctx)
		if err != nil || string(m) != string(msg) {
			t.Fatalf("got %q, %v; want %q", m, err, msg)
		}
	}
	if st, _ := ca.State(); ca.Path().Kind != PathLAN || st.Kind != StateReady {
		t.Errorf("alice's connection is %v on %v; want ready on the LAN", st, ca.Path())
	}
}

// runServerErrors connects alice to bob over home A's LAN with the servers
// bad, which all fail, and checks that alice hears why, each failure
// once per server as a PathUnavailable event with an *ICEServerError
// (ErrTURNUnauthorized for the wrong credentials, ErrICEServerTimeout,
// a net.Error timeout, for the STUN server that does not answer), and
// that messages flow both ways over the LAN all along.
func runServerErrors(t *testing.T, in *netns.Internet, bad []ICEServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	ca, cb, aev, _ := lanPair(t, ctx, in, bad, shortResume)
	got := map[string]error{}
	for len(got) < len(bad) {
		e := nextUnavailable(t, ctx, aev, "alice")
		var se *ICEServerError
		if errors.Is(e.Err, ErrNoICEPath) {
			continue // the exchange on the server-reflexive candidates that did come
		}
		if !errors.As(e.Err, &se) {
			t.Fatalf("PathUnavailable with %v; want an *ICEServerError", e.Err)
		}
		t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), e.Err)
		got[se.URL] = e.Err
	}
	if err := got[bad[0].URL]; !errors.Is(err, ErrTURNUnauthorized) || strings.Contains(err.Error(), bad[0].Password) {
		t.Errorf("wrong credentials: %v; want ErrTURNUnauthorized, without the password", err)
	}
	var ne net.Error
	if err := got[bad[1].URL]; !errors.Is(err, ErrICEServerTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("STUN where nothing listens: %v; want ErrICEServerTimeout, a timeout", err)
	}
	lanWorks(t, ctx, ca, cb)
}

// runOutage connects alice to bob over home A's LAN, cuts bob's LAN link
// so that the session resumes on an ICE path of kind want, then takes
// coturn down (down) and back (up) while messages flow, and checks that
// every message arrives exactly once, in order. On a direct path nothing
// happens to the session; on a relayed one it becomes inviable, its link
// breaks (the session suspends), and it resumes relayed after up.
func runOutage(t *testing.T, in *netns.Internet, servers []ICEServer, nat netns.NAT, want PathKind, down, up func() error) {
	in.SetNAT(t, in.RB, nat)
	defer in.SetNAT(t, in.RB, netns.NATKeepPorts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ca, cb, aev, bev := lanPair(t, ctx, in, servers)
	na, nb := ca.n, cb.n
	waitPath(t, ctx, na, ca)
	waitPath(t, ctx, nb, cb)
	if err := in.B.LinkDown(); err != nil {
		t.Fatal(err)
	}
	defer in.B.LinkUp()
	// The session may resume through the mailboxes first (relayed), and
	// move to a direct path found by a new exchange from there.
	for _, w := range []struct {
		name   string
		events <-chan ViabilityEvent
	}{{"alice", aev}, {"bob", bev}} {
		for {
			e := waitReconnected(t, ctx, w.events, w.name)
			if e.Path.Kind == want {
				break
			}
		}
	}

	const total = 300
	sent := make(chan error, 1)
	go func() {
		for i := range total {
			if err := ca.SendMessage(ctx, []byte(strconv.Itoa(i))); err != nil {
				sent <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		sent <- nil
	}()
	recvd := make(chan error, 1)
	go func() {
		for i := range total {
			m, err := cb.ReceiveMessage(ctx)
			if err != nil {
				recvd <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			if string(m) != strconv.Itoa(i) {
				recvd <- fmt.Errorf("message %d is %q: lost, duplicated or out of order", i, m)
				return
			}
		}
		recvd <- nil
	}()
	time.Sleep(300 * time.Millisecond) // some messages before the outage
	if err := down(); err != nil {
		t.Fatal(err)
	}
	if want == PathRelayed {
		// Inviable first, then the link breaks and the session waits.
		for e := range aev {
			if e.Kind == Inviable {
				t.Logf("alice: inviable: %v", e.Err)
				break
			}
		}
		for !ca.s.Suspended() && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("alice: suspended")
	} else {
		time.Sleep(time.Second) // messages during the outage
	}
	if err := up(); err != nil {
		t.Fatal(err)
	}
	if want == PathRelayed {
		for _, w := range []struct {
			name   string
			events <-chan ViabilityEvent
		}{{"alice", aev}, {"bob", bev}} {
			if e := waitReconnected(t, ctx, w.events, w.name); e.Path.Kind != PathRelayed {
				t.Fatalf("%s resumed on %v, want relayed", w.name, e.Path.Kind)
			}
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := <-recvd; err != nil {
		t.Fatal(err)
	}
	if want == PathDirect {
		for _, ch := range []chan ViabilityEvent{aev, bev} {
			select {
			case e := <-ch:
				t.Errorf("event %v %v on the direct path while coturn was down", e.Kind, e.Err)
			default:
			}
		}
		if ca.Path().Kind != PathDirect {
			t.Errorf("alice on %v after the outage, want still direct", ca.Path())
		}
	}
}
