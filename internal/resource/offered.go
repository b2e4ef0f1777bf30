package resource

import (
	"context"
	"errors"
	"io"
	"maps"
	"time"

	"github.com/nearnet/nearnet/security"
)

// ServeOffer reads the offer on a resource stream s, for up to timeout,
// and hands it to queue. Otherwise it calls failed with why and whether
// the offer was refused (ReadOffer wrote the refusal, which must reach the
// sender: close s gracefully) rather than missing (abort s).
func ServeOffer(s io.ReadWriter, timeout time.Duration, queue func(*Incoming), failed func(err error, refused bool)) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	in, err := ReadOffer(ctx, s)
	if err == nil {
		queue(in)
		return
	}
	var ne *NameError
	var pe *ProtocolError
	failed(err, errors.As(err, &ne) || errors.As(err, &pe))
}

// AcceptAs is Accept with the sender's name as the default PartialKey:
// its certificate fingerprint fp, or its peer ID id without TLS.
func (in *Incoming) AcceptAs(ctx context.Context, dir string, opts *AcceptOptions, fp security.Fingerprint, id string, progress Progress) (Received, error) {
	o := AcceptOptions{}
	if opts != nil {
		o = *opts
	}
	if o.PartialKey == "" {
		o.PartialKey = id
		if fp != (security.Fingerprint{}) {
			o.PartialKey = fp.String()
		}
	}
	return in.Accept(ctx, dir, &o, progress)
}

// SendOn checks o's name, opens a stream with open and sends the resource
// on it, closing the stream gracefully once the receiver verified it, or
// aborting it on failure.
func SendOn[S interface {
	io.ReadWriter
	Abort()
	Close() error
}](ctx context.Context, open func() (S, error), o Offer, src io.Reader, progress Progress) (Sent, error) {
	if _, err := SafeName(o.Name); err != nil {
		return Sent{}, err
	}
	o.Meta = maps.Clone(o.Meta)
	s, err := open()
	if err != nil {
		return Sent{}, err
	}
	sent, err := Send(ctx, s, o, src, progress)
	if err != nil {
		s.Abort()
		return Sent{}, err
	}
	s.Close()
	return sent, nil
}
