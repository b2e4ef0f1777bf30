package resource

import (
	"context"
	"errors"
	"io"
	"time"
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

// AcceptAs is Accept with opts possibly nil and key, the sender's name,
// as the default PartialKey.
func (in *Incoming) AcceptAs(ctx context.Context, dir string, opts *AcceptOptions, key string, progress Progress) (Received, error) {
	o := AcceptOptions{}
	if opts != nil {
		o = *opts
	}
	if o.PartialKey == "" {
		o.PartialKey = key
	}
	return in.Accept(ctx, dir, &o, progress)
}
