package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/resource"
	"github.com/nearnet/nearnet/security"
)

const receiveHelp = `receive advertises and accepts peers like listen, and saves the files they
send (nearnet send) in --dir. For each file it prints an offer event, then
progress (a bar with speed and ETA when stdout is a terminal, progress events
otherwise), then received, rejected or failed. received means the content
matched the sender's SHA-256 and the file has its name; until then it is a
hidden ".nearnet-partial-..." file in the same directory. A file sent from a
directory goes under its '/'-separated path, directories created as needed.

receive never overwrites a file. With --yes it accepts every offer, and a
file whose name exists is saved under the first free name of "a (1).jpg",
"a (2).jpg", ... Without --yes it asks on stderr about each offer, saying
when the name exists (y then saves it under a new name too), and reads y or
n from stdin; anything but y is no. Without --yes stdin must be a terminal:
receive refuses to start otherwise. An offer is rejected when stdin ends.

A transfer that breaks off (the sender interrupted, the connection lost)
leaves its partial file: the same name and size sent again, by any peer,
resumes after what is there once its SHA-256 matches the sender's. A
sender that sends nothing for --idle is dropped (its partial file kept),
and so is a transfer that fills the disk; both sides are told why, and the
failed event gives the partial file's path. An offer larger than the free
space is rejected, saying how much is free. What --dir keeps of transfers
that did not finish is bounded by --max-partials, --max-partial-mib and
--partial-age (checked at start-up and at each offer); each partial file
deleted for them is a pruned event with its path and the reason.

--dir must be writable: receive checks that at start-up.

With --code CODE (shown by nearnet send --code) receive needs no key: it
pairs with the sender by the code (nearnet pair -h), pinning it in
--known-peers if given, and advertises that it waits with a code so that
the sender finds it. A code that is wrong for 3 tries, or not used within 5
minutes, ends receive with exit status 1.

receive runs until interrupted, or with --count N until N files have been
received; it exits 0 either way. Messages peers send are printed as with
listen.`

// partialKey names partial files on the receiver. The library's default
// is the sender's certificate fingerprint, which changes with every run of
// nearnet send that has no --identity; with one key for all, a resend
// resumes whoever sends it (a resume needs the SHA-256 of what is there to
// match the sender's first bytes, so a mix-up cannot corrupt a file).
const partialKey = "nearnet-cli"

// optionFlags names, in the library's reasons, the flags that set the
// AcceptOptions fields.
var optionFlags = strings.NewReplacer(
	"(MaxPartials)", "(--max-partials)",
	"(MaxPartialBytes)", "(--max-partial-mib)",
	"(MaxPartialAge)", "(--partial-age)",
)

// runReceive: see receiveHelp.
func runReceive(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("receive")
	fs.summary = receiveHelp
	dir := fs.String("dir", ".", "save files in the directory `DIR`, which must exist")
	yes := fs.Bool("yes", false, "accept every offer without asking; a name that exists gets a new one")
	count := fs.Int("count", 0, "exit once `N` files have been received (0: run until interrupted)")
	idle := durationValue(resource.DefaultIdleTimeout)
	fs.Var(&idle, "idle", "drop a transfer when the sender sends nothing for `D`, keeping what came for a resume")
	maxPartials := fs.Int("max-partials", resource.DefaultMaxPartials, "keep at most `N` partial files of unfinished transfers in --dir (the oldest go first)")
	maxPartialMiB := fs.Int64("max-partial-mib", resource.DefaultMaxPartialBytes>>20, "keep at most `MIB` MiB of partial files in --dir (the oldest go first)")
	partialAge := durationValue(resource.DefaultMaxPartialAge)
	fs.Var(&partialAge, "partial-age", "delete partial files in --dir not written for `D`")
	codeText := fs.String("code", "", "pair with the sender showing `CODE` (nearnet send --code) before receiving; the code is good for 3 tries")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	var code security.PairingCode
	if *codeText != "" {
		var err error
		if code, err = security.ParsePairingCode(*codeText); err != nil {
			return fs.usageError("--code: " + errText(err))
		}
	}
	switch {
	case *count < 0:
		return fs.usageError("--count must be 0 (no limit) or more")
	case idle == 0:
		return fs.usageError("--idle must be more than 0")
	case *maxPartials < 1:
		return fs.usageError("--max-partials must be 1 or more")
	case *maxPartialMiB < 1 || *maxPartialMiB > 1<<42:
		return fs.usageError("--max-partial-mib must be 1 to 2^42")
	case partialAge == 0:
		return fs.usageError("--partial-age must be more than 0")
	}
	if st, err := os.Stat(*dir); err != nil {
		return fmt.Errorf("--dir: %s", pathErrText(err))
	} else if !st.IsDir() {
		return fmt.Errorf("--dir: %s is not a directory", *dir)
	}
	if err := resource.CheckWritable(*dir); err != nil {
		return fmt.Errorf("--dir: %s", errText(err))
	}
	if !*yes && !isTerminal(e.stdin) {
		return fs.usageError("stdin is not a terminal, so there is no one to ask about offers: " +
			"pass --yes to accept every offer (a name that exists gets a new one)")
	}
	var cfg *nearnet.Config
	var err error
	if code.IsZero() {
		cfg, err = fs.config(true)
	} else if cfg, err = fs.pairingConfig("receive --code"); err == nil {
		cfg.TXT = map[string]string{txtPair: "answer"}
	}
	if err != nil {
		return err
	}
	defer fs.closeTunnel() // after the node's Close, deferred later
	to := newTransferOut(e.stdout, fs.g.json)
	opts := &nearnet.AcceptOptions{
		Rename:          true,
		PartialKey:      partialKey,
		IdleTimeout:     time.Duration(idle),
		MaxPartials:     *maxPartials,
		MaxPartialBytes: *maxPartialMiB << 20,
		MaxPartialAge:   time.Duration(partialAge),
		PartialRemoved: func(path string, size int64, reason string) {
			reason = optionFlags.Replace(reason)
			to.out.print("", &fileEvent{head: head{Event: "pruned"}, Name: filepath.Base(path), Bytes: size, Path: path, Reason: reason})
		},
	}
	// Files abandoned while receive was not running go now.
	if _, err := resource.PrunePartials(*dir, (*resource.AcceptOptions)(opts)); err != nil {
		return fmt.Errorf("--dir: %s", errText(err))
	}
	cfg.OnReject = func(remote net.Addr, err error) { to.out.print("", newRejectedIncoming(remote, err)) }
	cfg.OnResourceRefused = func(p nearnet.Peer, err error) { to.out.print("", newRefusedOffer(p, err)) }
	node, err := fs.newNode(cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := node.Listen(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	to.out.print("", newReady(node, fs.g.insecure))
	var wg sync.WaitGroup
	pairErr := make(chan error, 1) // why the code died unpaired
	if !code.IsZero() {
		p, err := node.AnswerPairing(code, &nearnet.PairingOptions{
			OnFailure: func(err error) { to.out.print("", newPairFailed("", err)) },
		})
		if err != nil {
			return err
		}
		defer p.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer, err := p.Wait(ctx)
			switch {
			case err == nil:
				to.out.print("", newPairedEvent(peer, fs.g.knownPeers))
			case ctx.Err() == nil:
				pairErr <- fmt.Errorf("nothing paired: %s", errText(err))
				to.out.print("", newPairFailed("", err))
				cancel()
			}
		}()
	}

	r := &receiver{to: to, dir: *dir, opts: opts, count: *count, stop: cancel, stderr: &lockedWriter{w: e.stderr}}
	if !*yes {
		var stopReading func()
		r.answers, stopReading = readAnswers(e.stdin)
		defer stopReading()
	}
	for {
		c, err := node.Accept(ctx)
		if err != nil {
			break
		}
		to.out.print("", newConnEvent("connected", c, "accepted"))
		wg.Add(2)
		go func() {
			defer wg.Done()
			receive(ctx, to.out, "", c, nil) // messages, and the disconnected event
		}()
		go func() {
			defer wg.Done()
			for {
				in, err := c.AcceptResource(ctx)
				if err != nil {
					return
				}
				r.take(ctx, in)
			}
		}()
	}
	wg.Wait()
	if err := node.Close(); err != nil {
		return err
	}
	select {
	case err := <-pairErr:
		return err
	default:
		return nil
	}
}

// receiver takes the offers of every connection.
type receiver struct {
	to     *transferOut
	dir    string
	opts   *nearnet.AcceptOptions
	count  int    // --count; 0 for none
	stop   func() // ends the command (--count reached)
	stderr *lockedWriter

	answers <-chan string // stdin lines without --yes; nil with it
	askMu   sync.Mutex    // one question at a time

	mu       sync.Mutex // guards received
	received int
}

// take answers one offer and, if accepted, receives it.
func (r *receiver) take(ctx context.Context, in *nearnet.IncomingResource) {
	c := in.Peer
	tmpl := &fileEvent{Name: in.Name, Bytes: in.Size, From: c.Name, Peer: c.ID.String()}
	_, err := os.Lstat(filepath.Join(r.dir, filepath.FromSlash(in.Name)))
	exists := err == nil
	offer := tmpl.with("offer")
	offer.Exists = exists
	r.to.out.print("", offer)

	if r.answers != nil {
		if ok, why := r.ask(ctx, in, exists); !ok {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = in.Reject(rctx, why) // the sender may be gone: nothing to tell then
			e := tmpl.with("rejected")
			e.Reason = why
			r.to.out.print("", e)
			return
		}
	}

	pv := r.to.progress(tmpl)
	start := time.Now()
	got, err := in.Accept(ctx, r.dir, r.opts, pv.update)
	pv.finish()
	if err != nil {
		kind, why, partial := "failed", errText(err), ""
		var dropped *nearnet.ResourceDroppedError
		switch {
		case errors.As(err, &dropped):
			// What the sender was told too; the path is for this side.
			why, partial = dropped.Reason, dropped.Partial
		case errors.Is(err, nearnet.ErrResourceDiskFull):
			kind = "rejected"
		case errors.Is(err, nearnet.ErrResourceInProgress):
			kind, why = "rejected", "the same file is being received from another connection"
		case errors.Is(err, nearnet.ErrResourceExists):
			kind, why = "rejected", "no free name for it: "+errText(err)
		case errors.Is(err, nearnet.ErrResourceCorrupted):
			why = "corrupted in transit (SHA-256 mismatch): deleted; the sender may send it again"
		case ctx.Err() != nil:
			why = "receive stopped; what arrived is kept for a resume"
		}
		e := tmpl.with(kind)
		e.Reason, e.Path = why, partial
		r.to.out.print("", e)
		return
	}
	e := tmpl.with("received")
	e.Name, e.Bytes, e.Path, e.took = got.Name, got.Size, got.Path, time.Since(start)
	e.SHA256 = hex.EncodeToString(got.SHA256[:])
	e.Resumed = &got.Resumed
	if got.Name != in.Name {
		e.Offered = in.Name
	}
	r.to.out.print("", e)

	r.mu.Lock()
	r.received++
	done := r.count > 0 && r.received >= r.count
	r.mu.Unlock()
	if done {
		r.stop()
	}
}

// ask asks on stderr whether to take the offer and reads the answer from
// stdin. It returns false and the reason to give the sender for a no.
func (r *receiver) ask(ctx context.Context, in *nearnet.IncomingResource, exists bool) (bool, string) {
	r.askMu.Lock()
	defer r.askMu.Unlock()
	name, from := clean(in.Name), peerLabel(in.Peer.Name, in.Peer.ID.String())
	q := fmt.Sprintf("accept %q (%s) from %s? [y/N] ", name, humanBytes(in.Size), from)
	if exists {
		q = fmt.Sprintf("%q exists here: accept the one from %s (%s) under a new name, %q with a number? [y/N] ",
			name, from, humanBytes(in.Size), name)
	}
	r.stderr.printf("%s", q)
	select {
	case a, ok := <-r.answers:
		if !ok {
			r.stderr.printf("\n")
			return false, "no answer: the receiver's input ended (receive --yes accepts without asking)"
		}
		if a = strings.ToLower(strings.TrimSpace(a)); a == "y" || a == "yes" {
			return true, ""
		}
		return false, "declined by the receiver"
	case <-ctx.Done():
		r.stderr.printf("\n")
		return false, "the receiver stopped"
	}
}

// readAnswers sends each line of stdin on the channel it returns, which
// is closed when stdin ends. stop ends it early (unless a read blocks:
// then it ends when stdin does).
func readAnswers(stdin io.Reader) (answers <-chan string, stop func()) {
	ch := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	return ch, func() { close(done) }
}
