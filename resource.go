package nearnet

import (
	"context"
	"fmt"
	"io"
	"maps"

	"github.com/nearnet/nearnet/internal/resource"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// Resources: whole files with progress, SHA-256 verification and resume,
// after Multipeer Connectivity's sendResource and
// didStartReceivingResourceWithName / didFinishReceivingResourceWithName.
// Each transfer runs on a stream of its own (PROTOCOL.md, "Resources").

type (
	// ResourceOffer describes a resource: name ('/'-separated relative
	// path), exact size, and application metadata.
	ResourceOffer = resource.Offer

	// Progress is called as a transfer moves on with the bytes done and
	// the total, about every MiB, from the transferring goroutine.
	Progress = resource.Progress

	// AcceptOptions says how an accepted resource treats an existing file,
	// how long it waits for a silent sender, and what it keeps of
	// transfers that did not finish (every zero field has a default).
	AcceptOptions = resource.AcceptOptions

	// ReceivedResource describes a resource that is verified and in place.
	ReceivedResource = resource.Received

	// SentResource is what SendResource reports of a resource the receiver
	// verified and put in place: the content's SHA-256 and the bytes the
	// receiver kept from an earlier attempt.
	SentResource = resource.Sent

	// ResourceNameError reports a resource name that is unsafe as a path.
	ResourceNameError = resource.NameError

	// ResourceRejectedError is returned by SendResource when the receiver
	// declined the offer (its Code and Reason say why).
	ResourceRejectedError = resource.RejectedError

	// ResourceReceiverError is returned by SendResource when the receiver
	// took the bytes but failed (a hash mismatch, a full disk, an idle
	// sender); it may say so before all the content is sent.
	ResourceReceiverError = resource.ReceiverError

	// ResourceDroppedError is returned by IncomingResource.Accept when the
	// receiver ended the transfer itself (the sender idle, the disk full,
	// a write error): what the sender was told and where the partial file
	// is kept for a resume.
	ResourceDroppedError = resource.DroppedError
)

var (
	// ErrResourceCorrupted: the content did not hash to the sender's
	// SHA-256. The receiver deleted it; sending again starts from zero.
	ErrResourceCorrupted = resource.ErrHashMismatch

	// ErrResourceExists: the name is taken in the target directory and
	// neither Overwrite nor Rename was asked for.
	ErrResourceExists = resource.ErrExists

	// ErrResourceInProgress: the same resource is already being received
	// into the same directory.
	ErrResourceInProgress = resource.ErrInProgress

	// ErrShortSource: the source ended before the offered size.
	ErrShortSource = resource.ErrShortSource

	// ErrResourceIdle: the receiver got no bytes for
	// AcceptOptions.IdleTimeout and dropped the transfer.
	ErrResourceIdle = resource.ErrIdleTimeout

	// ErrResourceDiskFull: the receiver's file system has no room for the
	// resource (refused at the offer, or met while writing).
	ErrResourceDiskFull = resource.ErrDiskFull
)

// SendResource sends size bytes from src as a file named name and returns
// a nil error only once the receiver has verified its SHA-256 and given it
// its final name; the SentResource then holds that SHA-256 (computed as the
// content was sent: no second read of src) and how much a resume skipped.
// progress (may be nil) sees the bytes the receiver holds.
//
// If src is an io.ReaderAt (an *os.File), a transfer that broke off
// resumes: sending the same name and size again continues from what the
// receiver holds, once the SHA-256 of that prefix matches. Cancelling ctx
// stops the transfer; the receiver keeps its partial file for a resume.
func (c *Conn) SendResource(ctx context.Context, name string, src io.Reader, size int64, progress Progress) (SentResource, error) {
	return c.SendResourceOffer(ctx, ResourceOffer{Name: name, Size: size}, src, progress)
}

// SendResourceOffer is SendResource with metadata in the offer.
func (c *Conn) SendResourceOffer(ctx context.Context, offer ResourceOffer, src io.Reader, progress Progress) (SentResource, error) {
	if _, err := resource.SafeName(offer.Name); err != nil {
		return SentResource{}, err
	}
	offer.Meta = maps.Clone(offer.Meta)
	s, err := c.openStream(ctx, "", nil, wire.StreamKindResource)
	if err != nil {
		return SentResource{}, err
	}
	sent, err := resource.Send(ctx, s, offer, src, progress)
	if err != nil {
		s.Abort()
		return SentResource{}, err
	}
	s.Close()
	return sent, nil
}

// IncomingResource is a resource offer from the peer: its name, size and
// metadata, waiting for Accept or Reject (call one, once).
type IncomingResource struct {
	ResourceOffer
	Peer Peer

	c  *Conn
	s  *Stream
	in *resource.Incoming
}

// Accept receives the resource into the existing directory dir: into a
// hidden partial file next to the final name, verified by SHA-256, then
// renamed into place. A failed or cancelled transfer never leaves anything
// under the final name; its partial file lets a resend resume. Names are
// untrusted: the offer's name is in NFC, has passed strict checks and is
// resolved inside dir only. opts may be nil (never overwrite, the default
// bounds); progress may be nil. An offer larger than the free space is
// refused; a sender silent for opts.IdleTimeout is dropped, and so is a
// transfer that fills the disk, with a [*ResourceDroppedError] and the
// reason told to the sender. See [AcceptOptions] for what is kept; an
// invalid field of it refuses the offer with a [*ConfigError] naming it.
func (r *IncomingResource) Accept(ctx context.Context, dir string, opts *AcceptOptions, progress Progress) (ReceivedResource, error) {
	o := AcceptOptions{}
	if opts != nil {
		o = *opts
	}
	if o.PartialKey == "" {
		o.PartialKey = r.partialKey()
	}
	got, err := r.in.Accept(ctx, dir, &o, progress)
	// A graceful close even after a failure: the refusal or failed result
	// just written must reach the sender before the end of the stream.
	r.s.Close()
	return got, err
}

// partialKey names the sender for partial files: its certificate
// fingerprint, or its peer ID without TLS.
func (r *IncomingResource) partialKey() string {
	if fp := r.Peer.Fingerprint; fp != (security.Fingerprint{}) {
		return fp.String()
	}
	return r.Peer.ID.String()
}

// Reject declines the offer; the sender's SendResource fails with a
// [*ResourceRejectedError] carrying reason.
func (r *IncomingResource) Reject(ctx context.Context, reason string) error {
	err := r.in.Reject(ctx, reason)
	r.s.Close()
	return err
}

// AcceptResource returns the next resource the peer offered.
func (c *Conn) AcceptResource(ctx context.Context) (*IncomingResource, error) {
	select {
	case r := <-c.resq:
		c.takeResource(r)
		return r, nil
	default:
	}
	select {
	case r := <-c.resq:
		c.takeResource(r)
		return r, nil
	case <-c.ended:
		return nil, c.endErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Conn) takeResource(r *IncomingResource) {
	c.mu.Lock()
	c.resourcesQueued--
	if r != nil {
		r.s.taken = true
	}
	c.mu.Unlock()
}

// offerResource reads the offer on a resource stream, in the background,
// and queues it for AcceptResource (its place is reserved).
func (c *Conn) offerResource(s *Stream) {
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.n.cfg.HandshakeTimeout)
		defer cancel()
		in, err := resource.ReadOffer(ctx, s)
		if err != nil {
			c.takeResource(nil)
			_, unsafe := errorsAs[*ResourceNameError](err)
			_, malformed := errorsAs[*resource.ProtocolError](err)
			if !unsafe && !malformed {
				// No offer came (a broken stream, the handshake timeout).
				c.n.cfg.Logger.Debug("nearnet: no resource offer", "peer", c.peer.ID.Short(), "err", err)
				s.Abort()
				return
			}
			// ReadOffer wrote the refusal: let it reach the sender.
			s.Close()
			c.n.cfg.Logger.Debug("nearnet: resource offer refused", "peer", c.peer.ID.Short(), "err", err)
			if f := c.n.cfg.OnResourceRefused; f != nil {
				f(c.Peer(), err)
			}
			return
		}
		c.resq <- &IncomingResource{ResourceOffer: in.Offer, Peer: c.Peer(), c: c, s: s, in: in}
	}()
}

func (r *IncomingResource) String() string {
	return fmt.Sprintf("%q (%d bytes) from %s", r.Name, r.Size, r.Peer.ID.Short())
}
