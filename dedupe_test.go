package nearnet

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// drainAccept takes connections off n's accept queue so that incoming
// duplicates never wait on it.
func drainAccept(t *testing.T, n *Node) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, err := n.Accept(ctx); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func linkCount(c *Conn) int {
	return len(c.s.Paths())
}

// waitOneLink waits (bounded) for the losing duplicate link to finish its
// close handshake.
func waitOneLink(t *testing.T, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for linkCount(c) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("conn to %v still has %d links", c.Peer().ID.Short(), linkCount(c))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSimultaneousOpenRace makes every pair of nodes dial each other at
// the same moment, many times, and sends messages the instant each Connect
// returns. Both sides must keep the same single connection, and every
// message must arrive exactly once and in order.
func TestSimultaneousOpenRace(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		const rounds, nodes, msgs = 20, 4, 200
		for r := 0; r < rounds; r++ {
			t.Run(fmt.Sprint("round", r), func(t *testing.T) {
				ns := make([]*Node, nodes)
				for i := range ns {
					ns[i] = newNodeOn(t, tr, Config{})
					drainAccept(t, ns[i])
				}
				ctx := ctxT(t)
				type result struct {
					from, to int
					c        *Conn
				}
				results := make(chan result, nodes*nodes)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range ns {
					for j := range ns {
						if i == j {
							continue
						}
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							// Half the rounds dial by peer ID (the Conn exists while
							// preparing), half by address (it appears when ready).
							var c *Conn
							var err error
							if r%2 == 0 {
								c, err = ns[i].Connect(ctx, ns[j].Addr().String())
							} else {
								c, err = ns[i].ConnectAdvert(ctx, advertOfNode(ns[j]))
							}
							if err != nil {
								t.Errorf("%d→%d: %v", i, j, err)
								return
							}
							for k := 0; k < msgs; k++ {
								if err := c.SendMessage(ctx, []byte(fmt.Sprintf("%d>%d#%d", i, j, k))); err != nil {
									t.Errorf("%d→%d send %d: %v", i, j, k, err)
									return
								}
							}
							results <- result{i, j, c}
						}()
					}
				}
				close(start)
				wg.Wait()
				close(results)
				if t.Failed() {
					return
				}
				byPair := map[[2]int]*Conn{}
				for r := range results {
					byPair[[2]int{r.from, r.to}] = r.c
				}
				for i := range ns {
					if got := len(ns[i].Peers()); got != nodes-1 {
						t.Fatalf("node %d has %d peers, want %d", i, got, nodes-1)
					}
					for j := range ns {
						if i == j {
							continue
						}
						c := byPair[[2]int{i, j}]
						got, _ := ns[i].conns.Get(ns[j].ID())
						same := got == c
						if !same {
							t.Fatalf("node %d: Connect to %d returned a Conn that is not the peer's", i, j)
						}
						// Every message j sent to i arrives once, in order.
						for k := 0; k < msgs; k++ {
							m, err := c.ReceiveMessage(ctx)
							want := fmt.Sprintf("%d>%d#%d", j, i, k)
							if err != nil || string(m) != want {
								t.Fatalf("node %d from %d: got %q %v, want %q", i, j, m, err, want)
							}
						}
						waitOneLink(t, c)
					}
				}
				// Both ends kept the same link: its key matches on both sides.
				for i := range ns {
					for j := i + 1; j < nodes; j++ {
						a, b := byPair[[2]int{i, j}], byPair[[2]int{j, i}]
						la, lb := a.s.SendPath(), b.s.SendPath()
						if la == nil || lb == nil || la.Key() != lb.Key() {
							t.Fatalf("nodes %d and %d kept different connections", i, j)
						}
						// Datagrams use the surviving link's flow, both ways.
						sendUntil(t, a, b, fmt.Sprintf("dgram %d>%d", i, j))
						sendUntil(t, b, a, fmt.Sprintf("dgram %d>%d", j, i))
					}
				}
			})
		}
	})
}

// advertOfNode is what Browse would report for a node listening on loopback.
func advertOfNode(n *Node) Advert {
	ap := netip.MustParseAddrPort(n.Addr().String())
	return Advert{Name: n.Name(), ID: n.ID(), Addrs: []netip.Addr{ap.Addr()}, Port: int(ap.Port()), Transports: strings.Split(n.transportsTXT(), ",")}
}

// TestSimultaneousOpenEagerReaders receives on each Conn from the moment
// Accept or Connect returns it, while the duplicate is still being
// resolved, and sends a single message each way: a receiver must see the
// message whichever link it travels on (a receiver reading one link
// itself must notice the other).
func TestSimultaneousOpenEagerReaders(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		for r := 0; r < 40; r++ {
			a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			got := make(chan string, 4)
			var seen sync.Map
			// Each side greets its peer on the Conn as soon as it has it, from
			// Accept or from Connect, as a star application does.
			receive := func(self *Node, c *Conn) {
				if _, dup := seen.LoadOrStore(c, true); dup {
					return
				}
				c.SendMessage(ctx, []byte("from "+self.Name()))
				go func() {
					m, err := c.ReceiveMessage(ctx)
					if err != nil {
						got <- "error: " + err.Error()
						return
					}
					got <- string(m)
				}()
			}
			for _, n := range []*Node{a, b} {
				go func() {
					for {
						c, err := n.Accept(ctx)
						if err != nil {
							return
						}
						receive(n, c)
					}
				}()
			}
			var wg sync.WaitGroup
			// The second dial starts a little later in most rounds, so that a
			// receiver is often already reading the first link when the
			// second one joins.
			delay := time.Duration(r%4) * 300 * time.Microsecond
			for i, p := range [][2]*Node{{a, b}, {b, a}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i == 1 {
						time.Sleep(delay)
					}
					c, err := p[0].Connect(ctx, p[1].Addr().String())
					if err != nil {
						t.Error(err)
						return
					}
					receive(p[0], c)
				}()
			}
			wg.Wait()
			want := map[string]bool{"from " + a.Name(): true, "from " + b.Name(): true}
			for i := 0; i < 2; i++ {
				m := <-got
				if !want[m] {
					t.Fatalf("round %d: got %q, want one of %v", r, m, want)
				}
				delete(want, m)
			}
			cancel()
			a.Close()
			b.Close()
		}
	})
}
