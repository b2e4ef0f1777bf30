package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/resource"
	"github.com/nearnet/nearnet/security"
)

const sendHelp = `send connects to TARGET (an instance name or peer ID, found by discovery on
--interface, or host:port, which works through --proxy) and sends each FILE
to it, one after the other, with a progress bar (speed and ETA) when stdout
is a terminal, progress events otherwise. A directory is sent with
everything under it: its files are named by their '/'-separated path under
the directory's own name ("photos/2024/a.jpg" for photos/2024/a.jpg when
sending photos). Symbolic links to files are followed; other entries that
are not regular files, and empty directories, are skipped with a note. send
neither listens nor advertises.

Before connecting, send checks every name: one that receivers refuse (for
example with ':', '\' or control characters, or a Windows device name like
"con.txt"), or two FILEs with the same name, stop it with nothing sent.

Each file ends in exactly one sent, rejected or failed event. sent means
the receiver verified the file's SHA-256 and gave it its name. After the
last file, send prints a summary and exits 0 only if every file was sent;
otherwise 1, after sending what it could (a file the receiver rejects or
fails does not stop the others; a lost connection does).

With --code, send needs no key and no identity prepared: it shows a
six-digit code (and a QR code), the receiver runs nearnet receive --code
CODE, and the two pair by the code (nearnet pair -h) before the files go
over the same connection. Without --to it sends to the receiver found
waiting with a code. A wrong code ends both with "pairing code mismatch".

Interrupting send (Ctrl-C) stops the current file at once; the receiver
keeps what it got, and sending the same file again (same name and size)
resumes after it once its SHA-256 matches: the progress shows "resumed
from". Exit status 1 then.`

// runSend: see sendHelp.
func runSend(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("send")
	fs.summary = sendHelp
	fs.positional = "FILE"
	var to string
	wait := durationValue(5 * time.Second)
	fs.StringVar(&to, "to", "", "send to `TARGET`, an instance name, peer ID or host:port (required)")
	fs.Var(&wait, "wait", "give up finding and connecting to TARGET after `D`; 0 waits without limit")
	code := fs.Bool("code", false, "pair first: show a code for the receiver to type (nearnet receive --code CODE); --to is then optional")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	if *code {
		return sendWithCode(ctx, e, fs, to)
	}
	if to == "" {
		return fs.usageError("--to TARGET is required: an instance name, a peer ID or host:port")
	}
	if len(fs.args) == 0 {
		return fs.usageError("no FILE given: name the files and directories to send")
	}
	files, err := collectFiles(fs.args, func(msg string) { fmt.Fprintln(e.stderr, "nearnet: "+msg) })
	if err != nil {
		return err
	}
	cfg, err := fs.config(true)
	if err != nil {
		return err
	}
	return sendFiles(ctx, e, fs, cfg, files, to, time.Duration(wait), nil)
}

// sendFiles connects to to (unless pair does, with the node) and sends files.
func sendFiles(ctx context.Context, e *env, fs *flagSet, cfg *nearnet.Config, files []sendFile, to string, wait time.Duration,
	pair func(context.Context, *nearnet.Node, *printer) (*nearnet.Conn, error)) error {
	defer fs.closeTunnel() // after the node's Close, deferred later
	// A target not listening yet is waited for, within --wait, as chat
	// --to does; a refusal (key, trust, admission, proxy credentials)
	// ends the wait at once.
	cfg.RetryConnect = true
	to2 := newTransferOut(e.stdout, fs.g.json)
	node, err := fs.newNode(cfg)
	if err != nil {
		return err
	}
	defer node.Close()

	var c *nearnet.Conn
	if pair != nil {
		if c, err = pair(ctx, node, to2.out); err != nil {
			return err
		}
	} else if c, err = connectTo(ctx, node, to, wait, to2); err != nil {
		return err
	}
	return sendOver(ctx, c, files, to2)
}

// connectTo connects to to for send, within wait.
func connectTo(ctx context.Context, node *nearnet.Node, to string, wait time.Duration, to2 *transferOut) (*nearnet.Conn, error) {
	cctx := ctx
	if wait > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	c, err := node.Connect(cctx, to)
	if err != nil {
		if isRejection(err) && to2.out.json {
			// Readable output has it once, in the error below.
			to2.out.print("", newRejectedOutgoing(to, err))
		}
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("interrupted while connecting to %q: nothing sent", to)
		case cctx.Err() != nil:
			return nil, fmt.Errorf("connecting to %q: gave up after --wait %v: %s", to, wait, dialErrText(err))
		}
		return nil, fmt.Errorf("connecting to %q: %s", to, dialErrText(err))
	}
	return c, nil
}

// sendOver sends files over c, one after the other, and closes it.
func sendOver(ctx context.Context, c *nearnet.Conn, files []sendFile, to2 *transferOut) error {
	to2.out.print("", newConnEvent("connected", c, "dialed"))

	s := &sender{to: to2, c: c, hook: progressHook(ctx)}
	sum := &summaryEvent{head: head{Event: "summary"}, Files: len(files)}
	var stop string // why the files left were not sent
	for _, f := range files {
		if stop != "" {
			to2.out.print("", s.failed(f.name, 0, "not sent: "+stop))
			sum.Failed++
			continue
		}
		size, outcome, err := s.send(ctx, f)
		switch outcome {
		case "sent":
			sum.Sent++
			sum.Bytes += size
		case "rejected":
			sum.Rejected++
		default:
			sum.Failed++
		}
		switch {
		case ctx.Err() != nil:
			stop = "send was interrupted"
		case err != nil && connEnded(c):
			stop = "the connection ended (" + errText(err) + ")"
		}
	}
	// Every file sent was verified already: a close that fails or times
	// out loses nothing.
	_ = c.Close()
	to2.out.print("", sum)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %d of %d files sent; the receiver keeps what it got of the current file: send again to resume",
			sum.Sent, sum.Files)
	case sum.Sent < sum.Files:
		return fmt.Errorf("%d of %d files not sent (%d rejected, %d failed)", sum.Files-sum.Sent, sum.Files, sum.Rejected, sum.Failed)
	}
	return nil
}

// sendWithCode is send --code: pair with the receiver by a code this side
// shows (the receiver runs receive --code CODE), then send over the
// connection the pairing ran on.
func sendWithCode(ctx context.Context, e *env, fs *flagSet, to string) error {
	if len(fs.args) == 0 {
		return fs.usageError("no FILE given: name the files and directories to send")
	}
	files, err := collectFiles(fs.args, func(msg string) { fmt.Fprintln(e.stderr, "nearnet: "+msg) })
	if err != nil {
		return err
	}
	cfg, err := fs.pairingConfig("send --code")
	if err != nil {
		return err
	}
	return sendFiles(ctx, e, fs, cfg, files, to, 0, func(ctx context.Context, node *nearnet.Node, out *printer) (*nearnet.Conn, error) {
		p, err := node.OfferPairing(nil)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		showCode(out, node, p, security.DefaultPairingAttempts)
		c, err := pairWith(ctx, node, p, to, "answer", out)
		if err != nil {
			return nil, fmt.Errorf("nothing sent: %w", err)
		}
		out.print("", newPairedEvent(c.Peer(), fs.g.knownPeers))
		return c, nil
	})
}

// connEnded reports whether c has ended, so that no further file can go.
func connEnded(c *nearnet.Conn) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

type sender struct {
	to   *transferOut
	c    *nearnet.Conn
	hook func(name string, done, total int64) // tests: see progressHookKey
}

// send sends one file and prints its outcome: "sent", "rejected" or
// "failed", with its size.
func (s *sender) send(ctx context.Context, f sendFile) (size int64, outcome string, err error) {
	file, err := os.Open(f.path)
	if err != nil {
		s.to.out.print("", s.failed(f.name, 0, "cannot read it here: "+pathErrText(err)))
		return 0, "failed", nil
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		why := "it is no longer a regular file"
		if err != nil {
			why = pathErrText(err)
		}
		s.to.out.print("", s.failed(f.name, 0, "cannot read it here: "+why))
		return 0, "failed", nil
	}
	size = fi.Size()
	tmpl := newFileEvent("", s.c, true, f.name, size)
	// The receiver may ask someone first: say what send waits for.
	s.to.out.print("", tmpl.with("waiting"))
	pv := s.to.progress(tmpl)
	start := time.Now()
	sent, err := s.c.SendResource(ctx, f.name, file, size, func(done, total int64) {
		pv.update(done, total)
		if s.hook != nil {
			s.hook(f.name, done, total)
		}
	})
	pv.finish()
	var rej *nearnet.ResourceRejectedError
	switch {
	case err == nil:
		e := tmpl.with("sent")
		e.Resumed, e.took = &sent.Resumed, time.Since(start)
		e.SHA256 = hex.EncodeToString(sent.SHA256[:])
		s.to.out.print("", e)
		return size, "sent", nil
	case errors.As(err, &rej):
		e := tmpl.with("rejected")
		e.Reason = rej.Reason
		if e.Reason == "" {
			e.Reason = "rejected (" + rej.Code + ")"
		}
		s.to.out.print("", e)
		return size, "rejected", err
	case ctx.Err() != nil:
		s.to.out.print("", s.failed(f.name, size, "interrupted; the receiver keeps what it got: send again to resume"))
	default:
		s.to.out.print("", s.failed(f.name, size, errText(err)))
	}
	return size, "failed", err
}

func (s *sender) failed(name string, size int64, reason string) *fileEvent {
	e := newFileEvent("failed", s.c, true, name, size)
	e.Reason = reason
	return e
}

// sendFile is a file to send and the name it goes by.
type sendFile struct {
	path string // local path
	name string // resource name: '/'-separated
}

// collectFiles expands the FILE arguments into the files to send and
// checks their names. note reports entries skipped.
func collectFiles(args []string, note func(string)) ([]sendFile, error) {
	var files []sendFile
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("cannot send %s: %s", a, pathErrText(err))
		}
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, fmt.Errorf("cannot send %s: %v", a, err)
		}
		base := filepath.Base(abs)
		if base == string(filepath.Separator) || base == "." {
			return nil, fmt.Errorf("cannot send %s: it has no name to send it by; send the directories in it", a)
		}
		switch {
		case fi.Mode().IsRegular():
			files = append(files, sendFile{path: a, name: base})
		case fi.IsDir():
			n := len(files)
			err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return fmt.Errorf("cannot send %s: %s", p, pathErrText(err))
				}
				if d.IsDir() {
					return nil
				}
				rel, err := filepath.Rel(a, p)
				if err != nil {
					return err
				}
				st, err := os.Stat(p) // follows a link to a file
				switch {
				case err != nil:
					note(fmt.Sprintf("skipping %s: %s", p, pathErrText(err)))
				case st.IsDir():
					note(fmt.Sprintf("skipping %s: a link to a directory (not followed)", p))
				case !st.Mode().IsRegular():
					note(fmt.Sprintf("skipping %s: not a regular file", p))
				default:
					files = append(files, sendFile{path: p, name: base + "/" + filepath.ToSlash(rel)})
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			if len(files) == n {
				note(fmt.Sprintf("%s holds no files: nothing of it is sent", a))
			}
		default:
			return nil, fmt.Errorf("cannot send %s: not a regular file or directory", a)
		}
	}
	if len(files) == 0 {
		return nil, errors.New("nothing to send: no files in the arguments")
	}
	var bad []string
	seen := map[string]string{}
	for _, f := range files {
		if _, err := resource.SafeName(f.name); err != nil {
			var ne *resource.NameError
			if errors.As(err, &ne) {
				bad = append(bad, fmt.Sprintf("%q (%s): %s", f.name, clean(f.path), ne.Reason))
			} else {
				bad = append(bad, fmt.Sprintf("%q (%s): %s", f.name, clean(f.path), errText(err)))
			}
			continue
		}
		if p, dup := seen[f.name]; dup {
			bad = append(bad, fmt.Sprintf("%q: both %s and %s go by that name", f.name, clean(p), clean(f.path)))
			continue
		}
		seen[f.name] = f.path
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("nothing sent: %d name(s) receivers would refuse; rename them:\n  %s",
			len(bad), strings.Join(bad, "\n  "))
	}
	return files, nil
}

// pathErrText is a file error without the operation, which means nothing
// to a user ("open x: no such file" becomes "x: no such file").
func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}
