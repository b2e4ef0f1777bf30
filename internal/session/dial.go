package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"syscall"
	"time"

	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Dials makes a node's links: outgoing ones over its transports, in the
// order Connect tries them, and the listener's side of an accepted
// connection; both run the Handshaker and open the link's datagram flow.
// The node fills every field.
type Dials struct {
	HS               *Handshaker
	LinkCfg          *link.Config
	Dialers          []transport.Transport // the order Connect tries them
	Slots            chan struct{}         // a place per dial running (Config.MaxDials)
	NodeDone         <-chan struct{}
	HandshakeTimeout time.Duration
	Logger           *slog.Logger
	Tunnel           *TunnelPaths // with Config.TunnelWithHost, else nil

	// Wrap makes the API's *HandshakeError; Final reports a refusal that
	// trying again would repeat; FromTransport maps a transport's close.
	Wrap           func(addr string, incoming bool, stage string, err error) error
	Final          func(err error) bool
	FromTransport  func(err error) error
	ErrClosed      error
	ErrNoTransport error

	// PairingFor returns the pairing a dial with ctx carries (nil: none),
	// set as the dialed Path's Pairing.
	PairingFor func(ctx context.Context) any
}

// aLongTimeAgo is a deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// Deadline bounds a handshake by ctx and the handshake timeout.
func (d *Dials) Deadline(ctx context.Context) time.Time {
	dl := time.Now().Add(d.HandshakeTimeout)
	if t, ok := ctx.Deadline(); ok && t.Before(dl) {
		dl = t
	}
	return dl
}

// Order lists the transports Connect tries, in order, for a peer that
// offers the given transports (an advert's "tr" entry; nil: unknown, as
// for "host:port").
func (d *Dials) Order(offered []string) []transport.Transport {
	if offered == nil {
		return d.Dialers
	}
	var out []transport.Transport
	for _, t := range d.Dialers {
		if slices.Contains(offered, t.Name()) {
			out = append(out, t)
		}
	}
	return out
}

// Via tries the transports of order in turn to make a link to addr that
// offers to resume s (nil: a fresh session); it stops at a refusal, which
// the peer would repeat over another transport. The error is the first
// transport's. With another transport to fall back on or to come back to,
// a transport's own handshake is bounded by its FallbackAfter.
func (d *Dials) Via(ctx context.Context, order []transport.Transport, addr string, s *Session) (*Path, error) {
	var first error
	for _, t := range order {
		var limit time.Duration
		if len(order) > 1 {
			limit = t.FallbackAfter()
		}
		l, err := d.Dial(ctx, t, addr, s, limit)
		if err == nil {
			return l, nil
		}
		if first == nil {
			first = err
		}
		if d.Final(err) || ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = d.ErrNoTransport
	}
	return nil, first
}

// Dial makes an outgoing link over t to addr, which offers to resume s
// (nil: a fresh session). limit, if not 0, bounds the transport's own
// handshake.
func (d *Dials) Dial(ctx context.Context, t transport.Transport, addr string, s *Session, limit time.Duration) (*Path, error) {
	herr := func(stage string, err error) error {
		if ctx.Err() != nil && !d.Final(err) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return d.Wrap(addr, false, stage, err)
	}
	select { // a place among Config.MaxDials
	case d.Slots <- struct{}{}:
		defer func() { <-d.Slots }()
	case <-ctx.Done():
		return nil, herr(t.Name(), ctx.Err())
	case <-d.NodeDone:
		return nil, herr(t.Name(), d.ErrClosed)
	}
	dl := d.Deadline(ctx)
	if t := time.Now().Add(limit); limit > 0 && t.Before(dl) {
		dl = t
	}
	dctx, cancel := context.WithDeadline(ctx, dl)
	tc, err := t.Dial(dctx, addr)
	cancel()
	if err != nil {
		stage := t.Name()
		var se *transport.StageError
		if errors.As(err, &se) {
			stage, err = se.Stage, se.Err
		}
		return nil, herr(stage, err)
	}
	l := NewPath(tc, WriteThroughOf(tc), true, d.LinkCfg)
	l.Dialed, l.ResumeFor = addr, s
	if d.PairingFor != nil {
		l.Pairing = d.PairingFor(ctx)
	}
	l.SetDeadline(d.Deadline(ctx))
	stop := context.AfterFunc(ctx, func() { l.SetDeadline(aLongTimeAgo) })
	defer stop()
	if stage, err := d.HS.Client(l, addr, tc.TLS()); err != nil {
		err = d.FromTransport(err)
		if x, ok := tc.(interface{ Err() error }); ok && !d.Final(err) {
			// The listener's refusal may have come as the transport's
			// close (QUIC's CONNECTION_CLOSE) rather than as the close
			// frame before it.
			if perr := d.FromTransport(x.Err()); d.Final(perr) {
				err = perr
			}
		}
		return nil, herr(stage, err)
	}
	l.SetDeadline(time.Time{})
	d.Tunnel.note(l.Peer.ID, addr)
	d.startFlow(l)
	return l, nil
}

// Accept runs the listener side of the link handshake on c, an accepted
// connection. A connection that carries a stream (its first bytes are the
// stream magic) goes to stream, with what was read of it: Accept then
// returns neither link nor error.
func (d *Dials) Accept(ctx context.Context, c transport.Conn, stream func(transport.Stream, *bufio.Reader) error) (*Path, error) {
	herr := func(stage string, err error) error { return d.Wrap(c.RemoteAddr().String(), true, stage, err) }
	l := NewPath(c, WriteThroughOf(c), false, d.LinkCfg)
	l.SetDeadline(d.Deadline(ctx))
	if magic, err := l.Reader().Peek(len(wire.StreamMagic)); err == nil && string(magic) == wire.StreamMagic {
		st, ok := c.AsStream()
		if !ok {
			d.HS.Drop(l, nil)
			return nil, herr("stream", errors.New("a stream where this transport carries none"))
		}
		if err := stream(st, l.Reader()); err != nil {
			return nil, herr("stream", err)
		}
		return nil, nil
	}
	if stage, err := d.HS.Server(ctx, l, c.TLS()); err != nil {
		return nil, herr(stage, err)
	}
	d.startFlow(l)
	l.SetDeadline(time.Time{})
	return l, nil
}

// startFlow opens l's datagram flow if both hellos offered one. A failure
// costs the link its datagrams, not the link.
func (d *Dials) startFlow(l *Path) {
	f, err := l.T.Datagrams(l.Hello)
	if err != nil {
		d.Logger.Warn("nearnet: no datagrams on this connection", "peer", fmt.Sprintf("%x", l.Peer.ID[:4]), "err", err)
		return
	}
	if f != nil {
		l.Flow = f
	}
}

// WriteThroughOf returns what a link writes through
// (internal/link/writethrough.go), or nil where c offers nothing.
func WriteThroughOf(c transport.Conn) transport.WriteThrough {
	if w, ok := c.(interface{ WriteThrough() transport.WriteThrough }); ok {
		return w.WriteThrough()
	}
	return nil
}

// Round makes one round of attempts to reach s's peer again at addrs, in
// order, attaching the first link that works; refused reports that every
// host answered and nothing listened (the peer's node is gone), with the
// last error.
func (d *Dials) Round(ctx context.Context, addrs []string, s *Session, attach func(*Path)) (refused bool, last error) {
	refused = true
	id := s.Peer().ID
	for _, a := range d.Tunnel.withOther(id, addrs) {
		l, err := d.Via(ctx, d.Order(nil), a, s)
		if err != nil {
			d.Logger.Debug("nearnet: resume attempt failed", "peer", fmt.Sprintf("%x", id[:4]), "addr", a, "err", err)
			refused = refused && errors.Is(err, syscall.ECONNREFUSED)
			last = err
			continue
		}
		attach(l)
		return false, nil
	}
	return refused, last
}

// Race dials addrs over the transports of order, racing them in the way
// of Happy Eyeballs (transport.Race): every address over the first
// transport (address families interleaved), then over the next, then the
// extra attempts (first contact beyond the LAN); the first
// to give a link wins, and a link made after it goes to late. want, if not
// zero, is the peer the link must lead to. spawn runs a dial in the
// background. It returns the link, or one error per address (its first
// transport's, as Via).
func (d *Dials) Race(ctx context.Context, addrs []string, order []transport.Transport, extra []transport.Attempt, want [16]byte,
	late func(*Path), spawn func(func())) (*Path, []error) {
	try := func(ctx context.Context, a transport.Attempt, limit time.Duration) (*Path, error) {
		l, err := d.Dial(ctx, a.T, a.Addr, nil, limit)
		if err == nil && want != ([16]byte{}) && l.Peer.ID != want {
			l.Link.SendCloseNow(wire.CloseBadHello, "wrong peer")
			l.Fail(errors.New("wrong peer"))
			l, err = nil, fmt.Errorf("nearnet: %s answered as peer %x, not %x", a.Addr, l.Peer.ID, want)
		}
		return l, err
	}
	won, ok, firstErr := transport.Race(ctx, append(transport.Attempts(addrs, order), extra...), try, d.Final, late, spawn)
	if ok {
		return won, nil
	}
	var errs []error
	for _, a := range addrs {
		if err := firstErr[a]; err != nil {
			errs = append(errs, err)
		}
	}
	for _, x := range extra {
		a := x.Addr
		if err := firstErr[a]; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, d.ErrNoTransport)
	}
	return nil, errs
}
