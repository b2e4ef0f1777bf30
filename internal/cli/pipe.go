package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nearnet/nearnet"
)

const pipeHelp = `pipe carries bytes between two shells over one nearnet stream: stdin goes
to the stream, the stream to stdout, and each direction ends on its own
(half-close), so

    nearnet pipe --listen --key-file key --name kitchen > x.tar
    tar c dir | nearnet pipe --key-file key --to kitchen

copies a directory. With --to, pipe connects to TARGET (an instance name,
peer ID or host:port; --wait bounds finding and connecting, a refusal ends
it at once) and opens the stream. With --listen, pipe advertises and takes
the first stream a peer opens; when its stdin is a terminal it sends
nothing back. pipe exits 0 once both directions have
ended: stdin was sent and the peer closed its side. Events (--json ready,
connected, rejected) and diagnostics go to stderr: stdout carries only the
stream's bytes.`

// runPipe: see pipeHelp.
func runPipe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("pipe")
	fs.summary = pipeHelp
	var to string
	wait := durationValue(5 * time.Second)
	fs.StringVar(&to, "to", "", "open the stream to `TARGET`, an instance name, peer ID or host:port")
	listen := fs.Bool("listen", false, "advertise and take the first stream a peer opens")
	fs.Var(&wait, "wait", "with --to: give up finding and connecting to TARGET after `D`; 0 waits without limit")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	if (to == "") == !*listen {
		return fs.usageError("give exactly one of --to TARGET and --listen")
	}
	cfg, err := fs.config(true)
	if err != nil {
		return err
	}
	defer fs.closeTunnel()                 // after the node's Close, deferred later
	out := newPrinter(e.stderr, fs.g.json) // stdout is the stream's
	cfg.OnReject = func(remote net.Addr, err error) { out.print("", newRejectedIncoming(remote, err)) }
	cfg.RetryConnect = to != ""
	node, err := fs.newNode(cfg)
	if err != nil {
		return err
	}
	defer node.Close()

	var s *nearnet.Stream
	send := e.stdin
	if to != "" {
		s, err = pipeDial(ctx, node, to, time.Duration(wait), out)
	} else {
		if isTerminal(e.stdin) {
			send = nil
		}
		s, err = pipeAccept(ctx, node, fs.g.insecure, out)
	}
	if err != nil {
		return err
	}
	defer s.Close()
	return pipeCopy(ctx, s, send, e.stdout)
}

// pipeDial connects to target within wait and opens the pipe's stream.
func pipeDial(ctx context.Context, node *nearnet.Node, target string, wait time.Duration, out *printer) (*nearnet.Stream, error) {
	cctx := ctx
	if wait > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	c, err := node.Connect(cctx, target)
	if err != nil {
		if isRejection(err) && out.json {
			out.print("", newRejectedOutgoing(target, err))
		}
		if cctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("connecting to %q: gave up after --wait %v: %s", target, wait, dialErrText(err))
		}
		return nil, fmt.Errorf("connecting to %q: %s", target, dialErrText(err))
	}
	out.print("", newConnEvent("connected", c, "dialed"))
	s, err := c.OpenStream(ctx, "pipe")
	if err != nil {
		return nil, fmt.Errorf("opening a stream to %q: %s", target, errText(err))
	}
	return s, nil
}

// pipeAccept listens until a peer connects and opens a stream, and then
// stops listening.
func pipeAccept(ctx context.Context, node *nearnet.Node, insecure bool, out *printer) (*nearnet.Stream, error) {
	if err := node.Listen(ctx); err != nil {
		return nil, err
	}
	out.print("", newReady(node, insecure))
	for {
		c, err := node.Accept(ctx)
		if err != nil {
			return nil, ctxOr(ctx, err)
		}
		out.print("", newConnEvent("connected", c, "accepted"))
		s, err := c.AcceptStream(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// The peer left without opening one: wait for the next.
			continue
		}
		return s, nil
	}
}

// pipeCopy copies src (nil: nothing) to s and s to dst, each direction
// ending with a half-close, and returns when both have ended.
func pipeCopy(ctx context.Context, s *nearnet.Stream, src io.Reader, dst io.Writer) error {
	stop := context.AfterFunc(ctx, func() { s.Abort() })
	defer stop()
	sent := make(chan error, 1)
	go func() {
		var err error
		if src != nil {
			_, err = io.Copy(s, src)
		}
		if cerr := s.CloseWrite(); err == nil {
			err = cerr
		}
		sent <- err
	}()
	_, rerr := io.Copy(dst, s)
	if rerr != nil {
		s.Abort() // the peer is gone: stop sending too
	}
	var serr error
	select {
	case serr = <-sent:
	case <-ctx.Done(): // stdin may never end
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if rerr != nil {
		return fmt.Errorf("receiving: %s", errText(rerr))
	}
	if serr != nil {
		return fmt.Errorf("sending: %s", errText(serr))
	}
	return nil
}

// ctxOr is ctx's error if it is done, else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
