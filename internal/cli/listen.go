package cli

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/nearnet/nearnet"
)

const listenHelp = `Prints a ready event once advertised, then connected, message, datagram,
stream, disconnected and rejected events. A stream a peer opens is read to
its end and closed (with --echo, its bytes are sent back on it, and its
write side closed at its end). Runs until interrupted.

` + resumeHelp

// runListen advertises the node, accepts every peer that passes the
// security check and prints what each sends, until ctx is cancelled (then
// it closes the connections gracefully and returns nil). Peers refused
// during their handshake are printed as rejected events.
func runListen(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("listen")
	fs.summary = listenHelp
	echo := fs.Bool("echo", false, "send each message back to the peer that sent it, each datagram back as a datagram, each stream's bytes back on the stream")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	cfg, err := fs.config(true)
	if err != nil {
		return err
	}
	defer fs.closeTunnel() // after the node's Close, deferred later
	out := newPrinter(e.stdout, fs.g.json)
	cfg.OnReject = func(remote net.Addr, err error) { out.print("", newRejectedIncoming(remote, err)) }
	cfg.OnViability = func(c *nearnet.Conn, ve nearnet.ViabilityEvent) { out.print("", newViabilityEvent(c, ve)) }
	node, err := fs.newNode(cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	if err := node.Listen(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ready := newReady(node, fs.g.insecure)
	fs.tunReach(ready)
	out.print("", ready)
	var wg sync.WaitGroup
	for {
		c, err := node.Accept(ctx)
		if err != nil {
			break
		}
		out.print("", newConnEvent("connected", c, "accepted"))
		wg.Add(3)
		go func() {
			defer wg.Done()
			serveStreams(ctx, out, c, *echo)
		}()
		go func() {
			defer wg.Done()
			receive(ctx, out, "", c, func(m []byte) {
				if *echo {
					c.SendMessage(ctx, m) // a failure ends the connection, which receive reports
				}
			})
		}()
		go func() {
			defer wg.Done()
			receiveDatagrams(ctx, out, "", c, func(d []byte) {
				if *echo {
					c.SendDatagram(d) // best effort, as the datagram it answers
				}
			})
		}()
	}
	wg.Wait()
	return node.Close()
}

// serveStreams takes the streams c's peer opens, until the connection
// ends: each is read to its end (echoed when echo is set, then its write
// side closed) and closed, and reported as a stream event with the bytes
// it carried.
func serveStreams(ctx context.Context, out *printer, c *nearnet.Conn, echo bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			dst := io.Discard
			if echo {
				dst = s
			}
			n, err := io.Copy(dst, s)
			if err == nil && echo {
				err = s.CloseWrite()
			}
			out.print("", newStreamEvent(c, s.Name(), n, err))
		}()
	}
}

// receive prints the messages c receives, calling onMsg after each, until
// the connection ends (then it prints a disconnected event and returns
// the reason, "" for a clean close) or ctx is done.
func receive(ctx context.Context, out *printer, node string, c *nearnet.Conn, onMsg func([]byte)) (reason string) {
	for {
		m, err := c.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ""
			}
			var lost *nearnet.SessionLostError
			if !errors.As(err, &lost) && (errors.Is(err, io.EOF) || errors.Is(err, nearnet.ErrClosed)) {
				err = nil // a clean close
			}
			e := newDisconnected(c, err)
			out.print(node, e)
			return e.Reason
		}
		out.print(node, newMessage(c, m))
		if onMsg != nil {
			onMsg(m)
		}
	}
}

// receiveDatagrams prints the datagrams c receives, calling onDgram after
// each, until ReceiveDatagram fails: the connection ended (receive reports
// that), it has no datagrams (the peer does not do them), or ctx is done.
func receiveDatagrams(ctx context.Context, out *printer, node string, c *nearnet.Conn, onDgram func([]byte)) {
	for {
		d, err := c.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		out.print(node, newDatagram(c, d))
		if onDgram != nil {
			onDgram(d)
		}
	}
}
