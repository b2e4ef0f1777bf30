package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

// demoTimeout bounds the whole demo; on loopback it takes about a second,
// most of it mDNS probing.
const demoTimeout = 10 * time.Second

const demoHelp = `Three peers (alice, bob, carol) in this process, on the loopback interface
only, with a random pre-shared key: they advertise and browse over real mDNS,
each connects to every peer it finds (so each pair dials both ways, and the
library merges the duplicates), each sends every other a greeting, and each
checks that it got one from every other and holds exactly 2 connections.
Then alice sends bob a 16 MiB file of random content, as send and receive do
(into a temporary directory, removed afterwards), and bob's SHA-256 of it
must match.
Prints each step with the time since the start and ends with "demo ok", or
fails after 10 s saying what is missing. Only --json applies; the network
flags are ignored. Other nearnet peers seen on loopback are ignored.`

// runDemo: see demoHelp.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("demo")
	fs.uses("json")
	fs.summary = demoHelp
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	out := newPrinter(e.stdout, fs.g.json)
	out.start = time.Now()
	err := demo(ctx, out)
	if fs.g.json {
		ev := &demoEvent{head: head{Event: "demo"}, OK: err == nil}
		if err != nil {
			ev.Error = err.Error()
		}
		out.print("", ev)
	} else if err == nil {
		out.line("demo ok")
	}
	if err != nil {
		return fmt.Errorf("demo failed: %w", err)
	}
	return nil
}

type demoEvent struct {
	head
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (e *demoEvent) text() string {
	if e.OK {
		return "demo ok"
	}
	return "demo failed: " + e.Error
}

// peersEvent is the demo's summary of one node's connections.
type peersEvent struct {
	head
	Peers    []string `json:"peers"`    // names of the connected peers
	Dialed   int      `json:"dialed"`   // Connect calls that returned a connection
	Accepted int      `json:"accepted"` // connections Accept returned
}

func (e *peersEvent) text() string {
	return fmt.Sprintf("%d peers (%s); Connect returned %d connections and Accept %d",
		len(e.Peers), strings.Join(e.Peers, ", "), e.Dialed, e.Accepted)
}

// demoNode is one of the demo's peers and what it has seen.
type demoNode struct {
	name string
	node *nearnet.Node

	mu        sync.Mutex // guards the fields below
	found     map[nearnet.PeerID]bool
	conns     map[*nearnet.Conn]bool
	greeted   map[nearnet.PeerID]bool // greetings received, by sender
	dialed    int                     // Connect calls that returned a connection
	dialsDone int                     // Connect calls that returned
	accepted  int
	errs      []string
}

// fail records and prints an error of one of the demo's steps.
func (d *demoNode) fail(out *printer, what string, err error) {
	msg := d.name + ": " + what + ": " + errText(err)
	d.mu.Lock()
	d.errs = append(d.errs, msg)
	d.mu.Unlock()
	out.print(d.name, &errorEvent{head: head{Event: "error"}, Reason: what + ": " + errText(err)})
}

func demo(ctx context.Context, out *printer) error {
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	lo, err := loopbackInterface()
	if err != nil {
		return err
	}
	key, err := security.GenerateKey()
	if err != nil {
		return err
	}
	var nodes []*demoNode
	defer func() {
		var wg sync.WaitGroup
		for _, d := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); d.node.Close() }()
		}
		wg.Wait()
	}()
	ids := map[nearnet.PeerID]*demoNode{} // the demo's own peers; others on loopback are ignored
	for _, name := range []string{"alice", "bob", "carol"} {
		n, err := nearnet.NewNode(&nearnet.Config{Name: name, Key: &key, Interfaces: []string{lo}})
		if err != nil {
			return err
		}
		d := &demoNode{name: name, node: n, found: map[nearnet.PeerID]bool{},
			conns: map[*nearnet.Conn]bool{}, greeted: map[nearnet.PeerID]bool{}}
		nodes = append(nodes, d)
		ids[n.ID()] = d
	}

	// Listen (which includes mDNS probing) in parallel.
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, d := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = d.node.Listen(ctx); errs[i] == nil {
				d.name = d.node.Name() // renamed if another "alice" is on loopback
				out.print(d.name, newReady(d.node, false))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// The demo is complete when every node has a greeting from every
	// other and has finished dialing every other (each finds each, so each
	// pair dials both ways).
	complete := make(chan struct{})
	var completeOnce sync.Once
	check := func() {
		for _, d := range nodes {
			d.mu.Lock()
			ok := len(d.greeted) == len(nodes)-1 && d.dialsDone == len(nodes)-1
			d.mu.Unlock()
			if !ok {
				return
			}
		}
		completeOnce.Do(func() { close(complete) })
	}

	loops, stopLoops := context.WithCancel(ctx)
	var bg sync.WaitGroup // Accept, Browse, dial and receive loops
	defer bg.Wait()
	defer stopLoops() // runs before bg.Wait

	// handle takes a connection from Connect or Accept: the first time it
	// is seen, greet the peer and start receiving.
	handle := func(d *demoNode, c *nearnet.Conn, via string) {
		d.mu.Lock()
		if via == "dialed" {
			d.dialed++
		} else {
			d.accepted++
		}
		seen := d.conns[c]
		d.conns[c] = true
		d.mu.Unlock()
		if seen {
			return // the same connection from Connect and Accept: a merged duplicate
		}
		out.print(d.name, newConnEvent("connected", c, via))
		bg.Add(1)
		go func() {
			defer bg.Done()
			receive(loops, out, d.name, c, func(m []byte) {
				if p := c.Peer().ID; ids[p] != nil {
					d.mu.Lock()
					d.greeted[p] = true
					d.mu.Unlock()
					check()
				}
			})
		}()
		msg := fmt.Sprintf("hello %s, from %s", c.Peer().Name, d.name)
		if err := c.SendMessage(loops, []byte(msg)); err != nil && loops.Err() == nil {
			d.fail(out, "sending the greeting to "+c.Peer().Name, err)
		}
	}

	for _, d := range nodes {
		bg.Add(2)
		go func() {
			defer bg.Done()
			for {
				c, err := d.node.Accept(loops)
				if err != nil {
					return
				}
				handle(d, c, "accepted")
			}
		}()
		go func() {
			defer bg.Done()
			d.node.Browse(loops, func(be nearnet.BrowseEvent) {
				if be.Kind == nearnet.Lost || ids[be.ID] == nil {
					return
				}
				d.mu.Lock()
				dup := d.found[be.ID]
				d.found[be.ID] = true
				d.mu.Unlock()
				if dup {
					return
				}
				out.print(d.name, newBrowseEvent(be))
				bg.Add(1) // the Browse goroutine holds a count: no race with Wait
				go func() {
					defer bg.Done()
					c, err := d.node.ConnectAdvert(loops, be.Advert)
					if err != nil {
						if loops.Err() == nil {
							d.fail(out, "connecting to "+be.Name, err)
						}
					} else {
						handle(d, c, "dialed")
					}
					d.mu.Lock()
					d.dialsDone++
					d.mu.Unlock()
					check()
				}()
			})
		}()
	}

	select {
	case <-complete:
	case <-ctx.Done():
		return fmt.Errorf("after %v: %s", demoTimeout, missing(nodes, ids))
	}
	var problems []string
	for _, d := range nodes {
		peers := d.node.Peers()
		names := []string{}
		for _, c := range peers {
			names = append(names, c.Peer().Name)
		}
		slices.Sort(names)
		d.mu.Lock()
		out.print(d.name, &peersEvent{head: head{Event: "peers"}, Peers: names, Dialed: d.dialed, Accepted: d.accepted})
		d.mu.Unlock()
		if len(peers) != len(nodes)-1 {
			problems = append(problems, fmt.Sprintf("%s has %d connections, want %d", d.name, len(peers), len(nodes)-1))
		}
		d.mu.Lock()
		problems = append(problems, d.errs...)
		d.mu.Unlock()
	}
	if problems != nil {
		return errors.New(strings.Join(problems, "; "))
	}
	if !out.json {
		out.line(fmt.Sprintf("%8.1fms  duplicates resolved: each node has exactly %d peers", float64(time.Since(out.start).Microseconds())/1000, len(nodes)-1))
	}
	return demoFile(ctx, out, nodes[0], nodes[1])
}

// demoFileSize is the size of the file the demo sends.
const demoFileSize = 16 << 20

// demoFile sends a file of random content from one node to another, as
// send and receive do (SendResource, AcceptResource, Accept into a
// directory: a new temporary one, removed afterwards), and checks that the
// receiver's SHA-256 is that of the content.
func demoFile(ctx context.Context, out *printer, from, to *demoNode) error {
	cf, ct := connTo(from.node, to.node.ID()), connTo(to.node, from.node.ID())
	if cf == nil || ct == nil {
		return fmt.Errorf("%s and %s have no connection for the file", from.name, to.name)
	}
	dir, err := os.MkdirTemp("", "nearnet-demo-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	content := make([]byte, demoFileSize)
	rand.NewChaCha8([32]byte{}).Read(content) // incompressible, as a real file may be
	want := sha256.Sum256(content)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		r   nearnet.ReceivedResource
		err error
	}
	got := make(chan result, 1)
	go func() {
		in, err := ct.AcceptResource(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		out.print(to.name, newFileEvent("offer", ct, false, in.Name, in.Size))
		r, err := in.Accept(ctx, dir, nil, nil)
		got <- result{r, err}
	}()
	const name = "demo.bin"
	t0 := time.Now()
	sent, err := cf.SendResource(ctx, name, bytes.NewReader(content), int64(len(content)), nil)
	took := time.Since(t0)
	if err != nil {
		cancel()
		<-got
		return fmt.Errorf("%s sending %s to %s: %w", from.name, name, to.name, err)
	}
	res := <-got
	if res.err != nil {
		return fmt.Errorf("%s receiving %s: %w", to.name, name, res.err)
	}
	if res.r.SHA256 != want || sent.SHA256 != want {
		return fmt.Errorf("%s received %s with SHA-256 %x and %s sent %x, want %x", to.name, name, res.r.SHA256, from.name, sent.SHA256, want)
	}
	var zero int64
	recv := newFileEvent("received", ct, false, res.r.Name, res.r.Size)
	recv.Path = res.r.Path // in the temporary directory, gone once the demo ends
	for _, e := range []struct {
		who string
		ev  *fileEvent
	}{{to.name, recv}, {from.name, newFileEvent("sent", cf, true, name, int64(len(content)))}} {
		e.ev.took, e.ev.Resumed, e.ev.SHA256 = took, &zero, hex.EncodeToString(want[:])
		out.print(e.who, e.ev)
	}
	return nil
}

// connTo returns n's connection to the peer id, or nil.
func connTo(n *nearnet.Node, id nearnet.PeerID) *nearnet.Conn {
	for _, c := range n.Peers() {
		if c.Peer().ID == id {
			return c
		}
	}
	return nil
}

// missing says what the demo did not see happen.
func missing(nodes []*demoNode, ids map[nearnet.PeerID]*demoNode) string {
	var out []string
	for _, d := range nodes {
		d.mu.Lock()
		for id, o := range ids {
			if o == d {
				continue
			}
			if !d.found[id] {
				out = append(out, fmt.Sprintf("%s did not find %s", d.name, o.name))
			}
			if !d.greeted[id] {
				out = append(out, fmt.Sprintf("%s got no greeting from %s", d.name, o.name))
			}
		}
		if n := len(d.found) - d.dialsDone; n > 0 {
			out = append(out, fmt.Sprintf("%s is still connecting to %d peers", d.name, n))
		}
		out = append(out, d.errs...)
		d.mu.Unlock()
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// loopbackInterface names the loopback interface ("lo" on Linux, "lo0"
// on macOS), which the demo keeps all of its traffic on.
func loopbackInterface() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 && ifi.Flags&net.FlagUp != 0 {
			return ifi.Name, nil
		}
	}
	return "", errors.New("no loopback interface is up")
}
