package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

const chatHelp = `With --to, chat connects to each TARGET (an instance name, a peer ID or
host:port) and nothing else: it neither listens nor advertises. Any failure to
connect, a rejection included, ends it with an error. It ends by itself when
every target has disconnected.

Without --to, chat listens and advertises like listen, browses, and connects
to every nearnet peer it finds, so any number of chats form a star. A peer
that refuses it is printed as a rejected event and skipped.

Each line of stdin is one message, sent to every peer connected at that
moment. If none is, the line waits up to --wait for one (0: no limit) and chat
fails if none comes. With --to, --wait also bounds finding and connecting to
each target: a target not found yet, or not listening yet, is retried (with
backoff, at once when the network changes) until it answers or --wait ends.
While a connection is inviable, lines keep being read and sent; they are
delivered, once and in order, when it resumes. When stdin ends, chat closes
every connection once the peer has acknowledged all that was sent to it
(waiting up to 5 s for one that is resuming), and exits 0; if a peer did
not, chat fails naming it. Messages arriving after that are not printed.

With --datagram, each line is sent as one best-effort datagram (UDP,
encrypted and authenticated like messages) instead of a message. A datagram
may be lost, and nothing tells the sender. A line longer than the largest
datagram the path to a peer carries (1439 bytes on Ethernet; the limit is in
the error) ends chat with an error. A --to target that does not do datagrams
ends chat with an error; in star mode such a peer is reported on stderr and
skipped. When stdin ends, chat --datagram exits 0 once every line was handed
to the network: it cannot know whether they arrived, and a datagram that has
not been read when the connection closes is lost.

Datagrams received, with or without --datagram, are printed as datagram
events ("<name> (datagram) text" without --json).

` + chatGroupHelp + `

` + resumeHelp

// runChat: see chatHelp.
func runChat(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("chat")
	fs.summary = chatHelp
	var targets targetList
	wait := durationValue(5 * time.Second)
	fs.Var(&targets, "to", "connect to `TARGET`, an instance name, peer ID or host:port (repeatable)")
	fs.Var(&wait, "wait", "wait up to `D` for a peer before sending a line, and for each --to target; 0 waits without limit")
	datagram := fs.Bool("datagram", false, "send each line as a best-effort datagram instead of a message")
	groupName := fs.String("group", "", "chat in the group `NAME`: lines go to every member (--to: seeds)")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	if *groupName != "" {
		if *datagram {
			return fs.usageError("--datagram does not go with --group: a group carries messages")
		}
		return runGroupChat(ctx, e, fs, *groupName, targets, time.Duration(wait))
	}
	cfg, err := fs.config(true)
	if err != nil {
		return err
	}
	defer fs.closeTunnel() // after the node's Close, deferred later
	ch := &chat{
		out:      newPrinter(e.stdout, fs.g.json),
		stderr:   &lockedWriter{w: e.stderr},
		wait:     time.Duration(wait),
		dialOnly: len(targets) > 0,
		datagram: *datagram,
		peers:    map[nearnet.PeerID]*nearnet.Conn{},
		dialing:  map[nearnet.PeerID]bool{},
		refusals: map[string]string{},
		backoff:  map[nearnet.PeerID]dialBackoff{},
		changed:  make(chan struct{}),
	}
	cfg.OnReject = func(remote net.Addr, err error) { ch.out.print("", newRejectedIncoming(remote, err)) }
	cfg.OnViability = func(c *nearnet.Conn, ve nearnet.ViabilityEvent) { ch.out.print("", newViabilityEvent(c, ve)) }
	// A --to target that is not there yet is waited for, within --wait.
	cfg.RetryConnect = ch.dialOnly
	if ch.node, err = fs.newNode(cfg); err != nil {
		return err
	}
	defer ch.node.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	err = ch.start(ctx, targets, fs.g.insecure)
	if err == nil {
		err = ch.pump(ctx, e.stdin)
	}
	interrupted := ctx.Err() != nil
	closeErr := ch.closeAll()
	cancel() // ends Accept, Browse and the receivers
	ch.wg.Wait()
	if interrupted {
		// The user ended the chat: what was queued had CloseTimeout to
		// leave; say nothing of the rest.
		return ch.node.Close()
	}
	if err == nil {
		err = closeErr
	}
	return errors.Join(err, ch.node.Close())
}

// start connects to the --to targets or, without any, listens, advertises
// and starts accepting and browsing.
func (ch *chat) start(ctx context.Context, targets []string, insecure bool) error {
	if ch.dialOnly {
		for _, t := range targets {
			if err := ch.connectTarget(ctx, t); err != nil {
				return err
			}
		}
		return nil
	}
	if err := ch.node.Listen(ctx); err != nil {
		return err
	}
	ch.out.print("", newReady(ch.node, insecure))
	ch.wg.Add(2)
	go func() {
		defer ch.wg.Done()
		for {
			c, err := ch.node.Accept(ctx)
			if err != nil {
				return
			}
			ch.add(ctx, c, "accepted")
		}
	}()
	go func() {
		defer ch.wg.Done()
		ch.node.Browse(ctx, func(be nearnet.BrowseEvent) { ch.found(ctx, be) })
	}()
	return nil
}

type chat struct {
	node     *nearnet.Node
	out      *printer
	stderr   *lockedWriter
	wait     time.Duration
	dialOnly bool // --to: no listener; the chat ends when its peers are gone
	datagram bool // --datagram: lines go as datagrams

	wg sync.WaitGroup // receivers, dialers, Accept and Browse loops

	mu       sync.Mutex // guards the fields below
	peers    map[nearnet.PeerID]*nearnet.Conn
	dialing  map[nearnet.PeerID]bool
	changed  chan struct{}                  // closed and replaced when peers changes
	closing  bool                           // the chat is ending: no new peers
	failure  string                         // why the last --to peer failed, if it did
	refusals map[string]string              // peer name → why a connection to it was rejected (star mode)
	backoff  map[nearnet.PeerID]dialBackoff // star mode: peers whose dial failed

	noDatagrams map[*nearnet.Conn]bool // --datagram: peers without datagrams, reported (pump only)
}

// connectTarget connects to one --to target within --wait.
func (ch *chat) connectTarget(ctx context.Context, target string) error {
	cctx := ctx
	if ch.wait > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, ch.wait)
		defer cancel()
	}
	c, err := ch.node.Connect(cctx, target)
	if err != nil {
		if isRejection(err) && ch.out.json {
			// Readable output has it once, in the error below.
			ch.out.print("", newRejectedOutgoing(target, err))
		}
		if cctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("connecting to %q: gave up after --wait %v: %s", target, ch.wait, dialErrText(err))
		}
		return fmt.Errorf("connecting to %q: %s", target, dialErrText(err))
	}
	ch.add(ctx, c, "dialed")
	return nil
}

// dialBackoff is when a star-mode dial to a peer may be tried again.
type dialBackoff struct {
	fails int
	next  time.Time // zero after a rejection: never again
}

// starDialTime bounds one star-mode dial, the wait for a place among the
// node's concurrent dials (Config.MaxDials) included.
const starDialTime = 30 * time.Second

// found dials a nearnet peer Browse reports, unless connected, dialing,
// or backing off after a failed dial (doubling from 1 s to a minute; a
// rejection is not tried again). With the node's bound on concurrent
// dials, a network full of adverts that lead nowhere costs a bounded
// number of descriptors and a few retries a minute each.
func (ch *chat) found(ctx context.Context, be nearnet.BrowseEvent) {
	if be.Kind == nearnet.Lost || be.ID.IsZero() {
		return
	}
	ch.mu.Lock()
	b, failed := ch.backoff[be.ID]
	if ch.closing || ch.peers[be.ID] != nil || ch.dialing[be.ID] || failed && (b.next.IsZero() || time.Now().Before(b.next)) {
		ch.mu.Unlock()
		return
	}
	ch.dialing[be.ID] = true
	ch.wg.Add(1)
	ch.mu.Unlock()
	go func() {
		defer ch.wg.Done()
		dctx, cancel := context.WithTimeout(ctx, starDialTime)
		c, err := ch.node.ConnectAdvert(dctx, be.Advert)
		cancel()
		ch.mu.Lock()
		delete(ch.dialing, be.ID)
		switch {
		case err == nil:
			delete(ch.backoff, be.ID)
		case isRejection(err):
			ch.backoff[be.ID] = dialBackoff{}
		default:
			b := ch.backoff[be.ID]
			b.fails++
			b.next = time.Now().Add(min(time.Second<<min(b.fails-1, 6), time.Minute))
			ch.backoff[be.ID] = b
		}
		ch.mu.Unlock()
		switch {
		case err == nil:
			ch.add(ctx, c, "dialed")
		case ctx.Err() != nil:
		case isRejection(err):
			ch.out.print("", newRejectedOutgoing(be.Name, err))
			ch.mu.Lock()
			ch.refusals[be.Name] = dialErrText(err)
			ch.mu.Unlock()
		default:
			ch.stderr.printf("nearnet: connecting to %s: %s\n", clean(be.Name), dialErrText(err))
		}
	}()
}

// add starts tracking c, a connection from Connect or Accept (possibly
// the same one from both, after the library merged a duplicate).
func (ch *chat) add(ctx context.Context, c *nearnet.Conn, via string) {
	id := c.Peer().ID
	ch.mu.Lock()
	if ch.closing || ch.peers[id] == c {
		ch.mu.Unlock()
		return // the node's Close ends it
	}
	ch.peers[id] = c
	ch.changedLocked()
	ch.wg.Add(2)
	ch.mu.Unlock()
	ch.out.print("", newConnEvent("connected", c, via))
	go func() {
		defer ch.wg.Done()
		receiveDatagrams(ctx, ch.out, "", c, nil)
	}()
	go func() {
		defer ch.wg.Done()
		reason := receive(ctx, ch.out, "", c, nil)
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if ch.peers[id] == c {
			delete(ch.peers, id)
			ch.changedLocked()
		}
		if reason != "" {
			ch.failure = fmt.Sprintf("connection to %s failed: %s", clean(c.Peer().Name), reason)
		}
	}()
}

func (ch *chat) changedLocked() {
	close(ch.changed)
	ch.changed = make(chan struct{})
}

// pump sends each stdin line to the connected peers, until stdin ends,
// ctx is done or (with --to) every peer has gone.
func (ch *chat) pump(ctx context.Context, stdin io.Reader) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 64<<10), nearnet.DefaultMaxMessageSize)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
				return
			}
		}
		readErr <- sc.Err()
		close(lines)
	}()
	for n := 1; ; n++ {
		peers, changed := ch.snapshot()
		if ch.dialOnly && len(peers) == 0 {
			ch.mu.Lock()
			defer ch.mu.Unlock()
			if ch.failure != "" {
				return errors.New(ch.failure)
			}
			return nil // the peers closed the connections
		}
		var line string
		select {
		case l, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					return fmt.Errorf("reading stdin: %w", err)
				}
				return nil
			}
			line = l
			peers, _ = ch.snapshot() // a peer may have come with the line
		case <-changed:
			continue
		case <-ctx.Done():
			return nil
		}
		if len(peers) == 0 && ch.dialOnly {
			continue // the targets are gone; the check above ends the chat
		}
		if len(peers) == 0 {
			var err error
			if peers, err = ch.waitPeer(ctx); err != nil || peers == nil {
				return err
			}
		}
		for _, c := range peers {
			if ch.datagram {
				if err := ch.sendDatagram(c, n, line); err != nil {
					return err
				}
				continue
			}
			if err := c.SendMessage(ctx, []byte(line)); err != nil && ctx.Err() == nil {
				ch.stderr.printf("nearnet: sending to %s: %s\n", clean(c.Peer().Name), errText(err))
			}
		}
	}
}

// sendDatagram sends line n to c as a datagram. A line too large for the
// path, or a --to target without datagrams, is an error that ends the
// chat; other failures are reported and the chat goes on.
func (ch *chat) sendDatagram(c *nearnet.Conn, n int, line string) error {
	err := c.SendDatagram([]byte(line))
	if err == nil {
		return nil
	}
	name := clean(c.Peer().Name)
	switch {
	case errors.Is(err, nearnet.ErrDatagramTooLarge):
		if limit := c.MaxDatagramSize(); limit > 0 {
			return fmt.Errorf("--datagram: line %d not sent: it is %d bytes, more than the %d bytes a datagram to %s can carry "+
				"(the path's MTU less the IP, UDP and nearnet headers); shorten it, or chat without --datagram", n, len(line), limit, name)
		}
		return fmt.Errorf("--datagram: line %d not sent to %s: %s; shorten it, or chat without --datagram", n, name, errText(err))
	case errors.Is(err, nearnet.ErrDatagramsUnavailable):
		if ch.dialOnly {
			return fmt.Errorf("--datagram: %s has no datagrams on this connection (one side turned them off, or its "+
				"implementation has none): %s; chat without --datagram", name, errText(err))
		}
		if ch.noDatagrams == nil {
			ch.noDatagrams = map[*nearnet.Conn]bool{}
		}
		if !ch.noDatagrams[c] {
			ch.noDatagrams[c] = true
			ch.stderr.printf("nearnet: %s has no datagrams on this connection: skipping it (%s)\n", name, errText(err))
		}
	default:
		ch.stderr.printf("nearnet: sending a datagram to %s: %s\n", name, errText(err))
	}
	return nil
}

func (ch *chat) snapshot() ([]*nearnet.Conn, <-chan struct{}) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	cs := make([]*nearnet.Conn, 0, len(ch.peers))
	for _, c := range ch.peers {
		cs = append(cs, c)
	}
	return cs, ch.changed
}

// waitPeer waits up to --wait for a peer to connect. It returns nil, nil
// when ctx is done.
func (ch *chat) waitPeer(ctx context.Context) ([]*nearnet.Conn, error) {
	var timeout <-chan time.Time
	if ch.wait > 0 {
		t := time.NewTimer(ch.wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		peers, changed := ch.snapshot()
		if len(peers) > 0 {
			return peers, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, nil
		case <-timeout:
			ch.mu.Lock()
			defer ch.mu.Unlock()
			msg := fmt.Sprintf("no peer connected within --wait %v to send to", ch.wait)
			if len(ch.refusals) > 0 {
				var rs []string
				for name, why := range ch.refusals {
					rs = append(rs, name+": "+why)
				}
				slices.Sort(rs)
				msg += "; rejected: " + strings.Join(rs, "; ")
			}
			return nil, errors.New(msg)
		}
	}
}

// closeAll stops taking new peers and closes the connections gracefully,
// in parallel: each Close returns once the peer has acknowledged all that
// was sent to it, or after Config.CloseTimeout with an error.
func (ch *chat) closeAll() error {
	ch.mu.Lock()
	ch.closing = true
	cs := make([]*nearnet.Conn, 0, len(ch.peers))
	for _, c := range ch.peers {
		cs = append(cs, c)
	}
	ch.mu.Unlock()
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Close(); err != nil {
				errs[i] = fmt.Errorf("%s did not acknowledge all messages: %s", clean(c.Peer().Name), errText(err))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// isRejection reports whether err means the peer refused us, or we it:
// wrong key, untrusted identity, Admit said no.
func isRejection(err error) bool {
	var re *nearnet.RejectedError
	var ue *security.UntrustedPeerError
	return errors.As(err, &re) || errors.As(err, &ue) || errors.Is(err, nearnet.ErrKeyMismatch)
}

// targetList is the repeatable --to flag.
type targetList []string

func (l *targetList) String() string { return strings.Join(*l, ",") }

func (l *targetList) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty target: give an instance name, a peer ID or host:port")
	}
	*l = append(*l, s)
	return nil
}

// lockedWriter serializes diagnostics written from several goroutines.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (w *lockedWriter) printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.w, format, args...)
}
