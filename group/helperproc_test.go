package group

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

// helperEnv, set, makes the test binary a helper process that runs several
// group members at once (the multi-host tests run one per host). It reads
// commands from stdin and prints one line per result:
//
//	start N            start N more members; prints "ID idx peerid" each, then "STARTED"
//	members N          wait until every local member sees N members; "MEMBERS ok" or "MEMBERS err ..."
//	send idx count ms  member idx sends count messages, ms apart; "SENT idx total" when done
//	expect id=n,...    wait until every original member still here has n messages of each
//	                   sender (its own excepted); "EXPECT ok" or "EXPECT err ..."
//	leave idx          member idx leaves; "LEFT idx"
//	stats              "STATS maxneighbours=N maxqueue=N"
//
// Stdin's end closes everything. Each member checks, as it receives, that
// every sender's messages come in order without duplicates: an original
// member from the sender's first message, one that joined later from the
// first it got; a violation is printed as "VIOLATION ...".
const helperEnv = "NN_GROUP_HELPER"

type hmember struct {
	g        *Group
	original bool
	gone     atomic.Bool
	sent     int
	mu       sync.Mutex
	next     map[nearnet.PeerID]int // next index expected of each sender
}

func helperMain() int {
	debugSkip = func(g *Group, k skey, st *stream, first uint64) {
		var ns []string
		for _, n := range g.nbrs {
			ns = append(ns, fmt.Sprintf("%s ready=%v q=%d behind=%v", n.id.Short(), n.ready, len(n.q), n.behind[k]))
		}
		fmt.Fprintf(os.Stderr, "SKIP %s stream %s next=%d first=%d pending=%d nbrs=%v\n", g.id.Short(), k.origin.Short(), st.next, first, len(st.pending), ns)
	}
	key, err := security.ParseKey(os.Getenv("NN_KEY"))
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	meshLimit, _ := strconv.Atoi(os.Getenv("NN_MESHLIMIT"))
	var (
		out     sync.Mutex
		members []*hmember
		mmu     sync.Mutex
		wg      sync.WaitGroup
	)
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Printf(format+"\n", args...)
		out.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// startOne starts member idx; the first one browses and the others
	// join through it.
	startOne := func(idx int, seed string) {
		nc := &nearnet.Config{
			Key: &key, Interfaces: []string{"eth0"}, Transport: nearnet.TransportTCP,
			DisableDatagrams: true, DisablePathMonitor: true, ResumeWindow: 4 * time.Second,
			Service: "_nngroup._tcp",
		}
		c := &Config{Name: os.Getenv("NN_GROUP"), Node: nc, DisableBrowse: seed != "",
			MeshLimit: meshLimit, SyncInterval: 250 * time.Millisecond}
		if seed != "" {
			c.Seeds = []string{seed}
		}
		jctx, jcancel := context.WithTimeout(ctx, 30*time.Second)
		g, err := Join(jctx, c)
		jcancel()
		if err != nil {
			say("ERR join: %v", err)
			return
		}
		m := &hmember{g: g, original: idx < startN(), next: map[nearnet.PeerID]int{}}
		mmu.Lock()
		for len(members) <= idx {
			members = append(members, nil)
		}
		members[idx] = m
		mmu.Unlock()
		say("ID %d %s", idx, g.ID())
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				msg, err := g.Receive(ctx)
				if err != nil {
					return
				}
				i, err := strconv.Atoi(strings.TrimPrefix(string(msg.Payload), msg.From.Short()+":"))
				m.mu.Lock()
				want, seen := m.next[msg.From]
				if err != nil || (seen && i != want) || (!seen && m.original && i != 0) {
					say("VIOLATION %d from %s got %q want %d (seen %v)", idx, msg.From.Short(), msg.Payload, want, seen)
				}
				m.next[msg.From] = i + 1
				m.mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			for {
				e, err := g.NextEvent(ctx)
				if err != nil {
					return
				}
				if e.Kind == Forged || e.Kind == Gap {
					say("EVENT %d %s %s %v", idx, e.Kind, e.Member.ID.Short(), e.Err)
				}
			}
		}()
	}
	// start starts n more members at once (the very first before the
	// others, which need its address).
	start := func(n int) {
		mmu.Lock()
		base := len(members)
		mmu.Unlock()
		if base == 0 {
			startOne(0, "")
			base, n = 1, n-1
		}
		mmu.Lock()
		seed := members[0].g.Node().Addr().String()
		mmu.Unlock()
		var swg sync.WaitGroup
		for i := range n {
			swg.Add(1)
			go func() { defer swg.Done(); startOne(base+i, seed) }()
		}
		swg.Wait()
		say("STARTED")
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		mmu.Lock()
		ms := append([]*hmember(nil), members...)
		mmu.Unlock()
		switch f[0] {
		case "start":
			n, _ := strconv.Atoi(f[1])
			start(n)
		case "members":
			want, _ := strconv.Atoi(f[1])
			go func() {
				deadline := time.Now().Add(60 * time.Second)
				for _, m := range ms {
					for !m.gone.Load() && len(m.g.Members()) != want {
						if time.Now().After(deadline) {
							say("MEMBERS err %s sees %d", m.g.ID().Short(), len(m.g.Members()))
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
				say("MEMBERS ok")
			}()
		case "send":
			idx, _ := strconv.Atoi(f[1])
			count, _ := strconv.Atoi(f[2])
			ms2, _ := strconv.Atoi(f[3])
			m := ms[idx]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range count {
					if err := m.g.Send(ctx, payload(m.g.ID(), m.sent)); err != nil {
						say("ERR send: %v", err)
						return
					}
					m.sent++
					if ms2 > 0 {
						time.Sleep(time.Duration(ms2) * time.Millisecond)
					}
				}
				say("SENT %d %d", idx, m.sent)
			}()
		case "expect":
			want := map[nearnet.PeerID]int{}
			for _, kv := range strings.Split(f[1], ",") {
				k, v, _ := strings.Cut(kv, "=")
				id, _ := nearnet.ParsePeerID(k)
				want[id], _ = strconv.Atoi(v)
			}
			go func() {
				deadline := time.Now().Add(60 * time.Second)
				for _, m := range ms {
					if !m.original || m.gone.Load() {
						continue
					}
					for {
						short := ""
						m.mu.Lock()
						for id, n := range want {
							if id != m.g.ID() && m.next[id] < n {
								short = fmt.Sprintf("%s has %d of %d from %s", m.g.ID().Short(), m.next[id], n, id.Short())
								break
							}
						}
						m.mu.Unlock()
						if short == "" {
							break
						}
						if time.Now().After(deadline) {
							say("EXPECT err %s", short)
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
				say("EXPECT ok")
			}()
		case "leave":
			idx, _ := strconv.Atoi(f[1])
			ms[idx].gone.Store(true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ms[idx].g.Close()
				say("LEFT %d", idx)
			}()
		case "stats":
			maxN, maxQ := 0, 0
			for _, m := range ms {
				if m.gone.Load() {
					continue
				}
				maxN = max(maxN, len(m.g.Neighbours()))
				m.g.mu.Lock()
				maxQ = max(maxQ, m.g.maxQueue)
				m.g.mu.Unlock()
			}
			say("STATS maxneighbours=%d maxqueue=%d", maxN, maxQ)
		}
	}
	cancel()
	var cwg sync.WaitGroup
	for _, m := range members {
		if !m.gone.Load() {
			cwg.Add(1)
			go func() { defer cwg.Done(); m.g.Close() }()
		}
	}
	cwg.Wait()
	wg.Wait()
	return 0
}

// startN is how many members the helper starts with (NN_START): they are
// the original members, which must see every message.
func startN() int {
	n, _ := strconv.Atoi(os.Getenv("NN_START"))
	return n
}
