package nearnet

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// TestCloseThenReconnectAtOnce closes a connection and connects the same
// two nodes again at once, many times: every reconnect is a new Conn on
// both sides (the acceptor's Accept returns it) that carries messages both
// ways, and the closed one ends cleanly on the side that did not close it
// (its last message, then io.EOF). The new link can reach a node while its
// end of the old one is still finishing the close handshake; it must not
// join the old, closing session (session.Table.Attach), and a Connect by
// peer ID must not return it (session.Table.Open). Two ways: the dialer
// closes and dials again by address; the acceptor closes and the dialer,
// whose end saw the close, dials again by peer ID. Several pairs run at
// once, so that some node's goroutines are sometimes late.
func TestCloseThenReconnectAtOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		for _, byID := range []bool{false, true} {
			name := "dialer closes, redials by address"
			if byID {
				name = "acceptor closes, dialer redials by ID"
			}
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				const pairs, rounds = 4, 50
				var wg sync.WaitGroup
				errs := make(chan error, pairs)
				for range pairs {
					a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
					wg.Go(func() {
						if err := reconnectRounds(ctx, a, b, rounds, byID); err != nil {
							errs <- err
							cancel()
						}
					})
				}
				wg.Wait()
				close(errs)
				if err, ok := <-errs; ok {
					t.Error(err) // the first; the others' are from the cancel
				}
			})
		}
	})
}

// reconnectRounds connects a to b (by b's peer ID with byID, else by
// address), exchanges messages, closes one end (b's with byID, else a's)
// and at once connects again, rounds times.
func reconnectRounds(ctx context.Context, a, b *Node, rounds int, byID bool) error {
	exchange := func(from, to *Conn, msg string) error {
		if err := from.SendMessage(ctx, []byte(msg)); err != nil {
			return fmt.Errorf("sending %q: %w", msg, err)
		}
		if m, err := to.ReceiveMessage(ctx); err != nil || string(m) != msg {
			return fmt.Errorf("sent %q, received %q, %v", msg, m, err)
		}
		return nil
	}
	var oldA, oldB, oldPeer *Conn // oldPeer: the end the closer's peer holds
	for i := range rounds {
		var ca *Conn
		var err error
		if byID {
			ca, err = a.ConnectAdvert(ctx, advertOfNode(b))
		} else {
			ca, err = a.Connect(ctx, b.Addr().String())
		}
		if err != nil {
			return fmt.Errorf("round %d: Connect: %w", i, err)
		}
		if ca == oldA {
			return fmt.Errorf("round %d: Connect after the close gave the closed Conn back", i)
		}
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		cb, err := b.Accept(actx)
		acancel()
		if err != nil {
			return fmt.Errorf("round %d: Accept never returned the new connection: %w", i, err)
		}
		if cb == oldB {
			return fmt.Errorf("round %d: Accept gave the closed Conn back", i)
		}
		for _, c := range []*Conn{ca, cb} {
			if s, _ := c.State(); s.Kind != StateReady {
				return fmt.Errorf("round %d: new Conn is %v, want ready", i, s)
			}
		}
		if err := exchange(ca, cb, fmt.Sprint("a to b ", i)); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if err := exchange(cb, ca, fmt.Sprint("b to a ", i)); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if oldPeer != nil {
			// The closed Conn ended cleanly, and its end did not touch
			// the new one.
			if m, err := oldPeer.ReceiveMessage(ctx); err != nil || string(m) != "last" {
				return fmt.Errorf("round %d: the closed Conn's last message: %q, %v", i, m, err)
			}
			if m, err := oldPeer.ReceiveMessage(ctx); err != io.EOF {
				return fmt.Errorf("round %d: the closed Conn: %q, %v; want io.EOF", i, m, err)
			}
			select {
			case <-oldPeer.Done():
			case <-ctx.Done():
				return fmt.Errorf("round %d: the closed Conn never ended", i)
			}
			for _, c := range []*Conn{ca, cb} {
				if s, _ := c.State(); s.Kind != StateReady {
					return fmt.Errorf("round %d: new Conn is %v after the old one ended, want ready", i, s)
				}
			}
		}
		closer, peer := ca, cb
		if byID {
			closer, peer = cb, ca
		}
		if err := closer.SendMessage(ctx, []byte("last")); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if err := closer.Close(); err != nil {
			return fmt.Errorf("round %d: Close: %w", i, err)
		}
		oldA, oldB, oldPeer = ca, cb, peer
	}
	return nil
}
