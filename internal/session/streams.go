package session

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/nearnet/nearnet/internal/stream"
	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/wire"
)

// Streams opens and accepts the streams of one session (PROTOCOL.md,
// "Streams") for its owner, whose stream type is S: the owner hands it
// its table, how to make, abort and deliver an S, and how to show errors.
type Streams[S comparable] struct {
	S       *Session
	Table   *stream.Table[S]
	Dials   *Dials
	Timeout time.Duration // the handshake timeout

	New      func(id uint64, name string, meta map[string]string, kind string, st transport.Stream) S
	Abort    func(S)
	Deliver  func(S)                   // an accepted stream for the application (or a resource offer)
	Rejected func(reason string) error // the peer refused our stream
	FromT    func(error) error         // maps a transport's error
}

// Open opens a stream to the peer, asking the peer to open it where only
// the peer can (we are a TCP link's listener).
func (x *Streams[S]) Open(ctx context.Context, name string, meta map[string]string, kind string) (S, error) {
	var zero S
	if err := wire.CheckStream(name, meta, kind); err != nil {
		return zero, err
	}
	l, err := x.S.StreamPath(ctx)
	if err != nil {
		return zero, err
	}
	id := x.Table.NextID()
	s, err := x.dial(ctx, l, &wire.StreamOpen{ID: id, Name: name, Meta: meta, Kind: kind}, name, meta, kind)
	if !errors.Is(err, transport.ErrPeerOpens) {
		return s, err
	}
	req, err := wire.AppendStreamRequest(nil, &wire.StreamRequest{ID: id, Name: name, Meta: meta, Kind: kind})
	if err != nil {
		return zero, err
	}
	ch := make(chan stream.Result[S], 1)
	x.Table.Request(id, &stream.Pending[S]{Name: name, Meta: meta, Kind: kind, Ch: ch})
	defer x.Table.Answered(id)
	if !l.Enqueue(wire.OpBinary, 0, req) {
		return zero, errors.New("the connection is closing")
	}
	select {
	case r := <-ch:
		return r.S, r.Err
	case <-x.S.Ended():
		return zero, x.S.EndErr()
	case <-ctx.Done():
		// The dialer's stream may still come; Accept finds no pending
		// entry then and refuses it.
		return zero, ctx.Err()
	}
}

// dial opens a stream to the peer of l over l's transport and runs its
// handshake. It returns transport.ErrPeerOpens where only the peer can
// open streams of l's connection.
func (x *Streams[S]) dial(ctx context.Context, l *Path, o *wire.StreamOpen, name string, meta map[string]string, kind string) (S, error) {
	var zero S
	st, err := l.T.OpenStream(ctx)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			err = x.S.EndErr()
		}
		return zero, x.FromT(err)
	}
	ok := false
	defer func() {
		if !ok {
			st.Abort()
		}
	}()
	st.SetDeadline(x.Dials.Deadline(ctx))
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(aLongTimeAgo) })
	defer stop()
	cs := st.TLS()
	if cs != nil && CertFingerprint(cs) != l.Peer.Fingerprint {
		return zero, errors.New("the stream's TLS peer is not the connection's peer")
	}
	exp, err := stream.Exporter(cs)
	if err != nil {
		return zero, err
	}
	if err := stream.Open(ctx, st, &l.StreamKey, l.Handle, exp, o); err != nil {
		var r *stream.RefusedError
		if errors.As(err, &r) {
			err = x.Rejected(r.Reason)
		}
		return zero, err
	}
	s := x.New(o.ID, name, meta, kind, st)
	ok = true
	if !stop() {
		x.Abort(s)
		return zero, ctx.Err()
	}
	// Opened by the application (taken), or for its AcceptStream (a reply).
	if !x.Table.Keep(s, !o.Reply, x.S.Terminal) {
		x.Abort(s)
		return zero, x.S.EndErr()
	}
	return s, nil
}

// Accept takes an incoming stream whose open o named this session's link
// with key: it checks the proof, admits the stream and delivers it.
func (x *Streams[S]) Accept(st transport.Stream, key *[32]byte, o *wire.StreamOpen) error {
	cs := st.TLS()
	if cs != nil && CertFingerprint(cs) != x.S.Peer().Fingerprint {
		return stream.Refuse(st, "the stream's TLS peer is not the connection's peer")
	}
	exp, err := stream.Exporter(cs)
	if err != nil {
		return stream.Refuse(st, err.Error())
	}
	if !stream.CheckProof(key, exp, o) {
		return stream.Refuse(st, "stream proof does not match")
	}
	ps, refusal := x.Table.Admit(o, x.S.Terminal)
	if refusal != "" {
		return stream.Refuse(st, refusal)
	}
	if ps != nil {
		o.Name, o.Meta, o.Kind = ps.Name, ps.Meta, ps.Kind
	}
	err = stream.Accept(st, key, exp, o)
	s := x.New(o.ID, o.Name, o.Meta, o.Kind, st)
	if err != nil || !x.Table.Keep(s, false, x.S.Terminal) {
		x.Abort(s)
		if !o.Reply {
			x.Table.Unreserve(o.Kind)
		}
		if ps != nil {
			ps.Ch <- stream.Result[S]{Err: errors.New("the stream connection failed")}
		}
		return err
	}
	if ps != nil {
		ps.Ch <- stream.Result[S]{S: s}
	} else {
		x.Deliver(s) // never blocks: a place was reserved
	}
	return nil
}

// Answer runs on the link's dialer when the listener asked for a stream:
// it opens it and delivers it, or tells the listener why it could not.
func (x *Streams[S]) Answer(l *Path, q *wire.StreamRequest) {
	refuse := func(err error) {
		l.Enqueue(wire.OpBinary, 0, wire.AppendStreamRefused(nil, &wire.StreamRefused{ID: q.ID, Error: err.Error()}))
	}
	if !x.Table.Reserve(q.Kind) {
		refuse(stream.ErrBacklogFull)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.Timeout)
	defer cancel()
	s, err := x.dial(ctx, l, &wire.StreamOpen{ID: q.ID, Reply: true}, q.Name, q.Meta, q.Kind)
	if err != nil {
		x.Table.Unreserve(q.Kind)
		refuse(err)
		return
	}
	x.Deliver(s)
}

// Refused runs on the link's listener when its request failed.
func (x *Streams[S]) Refused(r *wire.StreamRefused) {
	if ps := x.Table.Answered(r.ID); ps != nil {
		ps.Ch <- stream.Result[S]{Err: x.Rejected(r.Error)}
	}
}

// AcceptLoop takes, in the background, the streams the peer opens on l's
// transport connection, where streams arrive on the connection itself
// (QUIC); TCP stream connections arrive at the listener instead. accept
// handles each one; wg counts the goroutines.
func AcceptLoop(wg *sync.WaitGroup, l *Path, timeout time.Duration, accept func(transport.Stream) error, refused func(error)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			// Ends with the connection (or at once: transport.ErrNoStreams).
			st, err := l.T.AcceptStream(context.Background())
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.SetDeadline(time.Now().Add(timeout))
				if err := accept(st); err != nil {
					refused(err)
				}
			}()
		}
	}()
}
