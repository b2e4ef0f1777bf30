package nearnet

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nearnet/nearnet/internal/resource"
	"github.com/nearnet/nearnet/internal/stream"
	"github.com/nearnet/nearnet/internal/wire"
)

// Resources: whole files with progress, SHA-256 verification and resume,
// after Multipeer Connectivity's sendResource and
// didStartReceivingResourceWithName / didFinishReceivingResourceWithName.
// Each transfer runs on a stream of its own (PROTOCOL.md, "Resources").

// The types below are nearnet's own, with the same fields as their
// internal/resource counterparts: the root converts values at the calls
// into that package (a struct conversion, which stops compiling if the two
// drift apart), and the errors show themselves as these types to
// errors.As through package nnerr's hook (see publicError).

// ResourceOffer describes a resource: what the receiver sees before it
// decides.
type ResourceOffer struct {
	// Name is the file's name, or its '/'-separated path inside a
	// directory being sent ("album/a.jpg"). It must be a safe relative
	// path: no "..", no absolute path, no control characters (a
	// [*ResourceNameError] says what is wrong).
	Name string

	// Size is the exact length of the content in bytes, at most 2^53-1
	// (the largest integer every JSON decoder keeps exactly).
	Size int64

	// Meta is free-form application data (a MIME type, a modification
	// time). Name, Size and Meta together must encode to at most 64 KiB
	// of JSON.
	Meta map[string]string
}

// Progress is called as a transfer moves on, from the goroutine that
// called [Conn.SendResource] or [IncomingResource.Accept], with done the
// bytes the receiver holds (or the sender has sent) and total the
// resource's size. The first call has done at the resume offset, the last
// done == total; done never decreases. It is called about every MiB, so
// it should return quickly: it is on the transfer's path.
type Progress func(done, total int64)

// AcceptOptions says how [IncomingResource.Accept] treats an existing
// file, how long it waits for a silent sender, and what it keeps of
// transfers that did not finish. The zero value (or nil) never overwrites
// and uses the defaults given below. An invalid field makes Accept refuse
// the offer and return a [*ConfigError] naming it.
type AcceptOptions struct {
	// Overwrite replaces a file of the offered name. A directory of that
	// name is never replaced.
	Overwrite bool

	// Rename picks the first free name of "name (1).ext", "name (2).ext",
	// ... "name (999).ext" if the offered name is taken. It cannot be set
	// with Overwrite. If neither is set, a taken name fails with
	// [ErrResourceExists].
	Rename bool

	// PartialKey names the sender in the partial file's name, so that a
	// resend from the same sender finds its partial file and another
	// sender's file of the same name and size does not. If empty, Accept
	// uses the peer's certificate fingerprint (its peer ID without TLS).
	PartialKey string

	// IdleTimeout is how long Accept waits for the sender's next byte,
	// from its acceptance until the trailer. When it passes, Accept tells
	// the sender (code "idle_timeout"), keeps what arrived for a resume,
	// frees the name for another transfer, and returns a
	// [*ResourceDroppedError] matching [ErrResourceIdle]. Time the
	// receiver itself spends (writing to a slow disk) does not count. If
	// zero, 30 seconds; it must not be negative.
	IdleTimeout time.Duration

	// MaxPartials bounds the partial files Accept leaves in the target
	// directory (at any depth) from transfers that are not running: when
	// a transfer starts and when one ends without finishing, the oldest
	// (last written longest ago) are deleted until at most MaxPartials
	// are left. A partial file being written is never deleted. If zero,
	// 64; it must not be negative.
	MaxPartials int

	// MaxPartialBytes bounds the total size of the partial files kept as
	// MaxPartials bounds their number, oldest deleted first. A transfer
	// that ends holding more than MaxPartialBytes keeps nothing. If zero,
	// 16 GiB; it must not be negative.
	MaxPartialBytes int64

	// MaxPartialAge is how long a partial file is kept after it was last
	// written: Accept deletes older ones in the target directory. If
	// zero, 7 days; it must not be negative.
	MaxPartialAge time.Duration

	// PartialRemoved, if set, is called for each partial file Accept
	// deletes to keep within MaxPartials, MaxPartialBytes and
	// MaxPartialAge, with its path, its size and why. It is called from
	// the goroutine that called Accept, outside any lock of the library.
	PartialRemoved func(path string, size int64, reason string)
}

// ReceivedResource describes a resource that is verified and in place.
type ReceivedResource struct {
	Path    string   // the file: the target directory joined with Name
	Name    string   // '/'-separated name in the directory; differs from the offer's after a rename
	Size    int64    // bytes
	SHA256  [32]byte // of the whole content, checked against the sender's
	Resumed int64    // bytes kept from an earlier attempt; 0 if it started from zero
}

// SentResource is what SendResource reports of a resource the receiver
// verified and put in place.
type SentResource struct {
	SHA256  [32]byte // of the whole content, as the receiver checked it
	Resumed int64    // bytes the receiver kept from an earlier attempt; 0 if it started from zero
}

// ResourceNameError reports a resource name that is unsafe to use as a
// relative path. SendResource returns it before sending anything; a
// receiver refuses such an offer ([Config.OnResourceRefused]).
type ResourceNameError struct {
	Name   string // the name as offered (may hold control characters: print with %q)
	Reason string // what is wrong, e.g. `component ".." leaves the directory`
}

func (e *ResourceNameError) Error() string {
	return fmt.Sprintf("nearnet: unsafe resource name %q: %s", e.Name, e.Reason)
}

// ResourceRejectedError is returned by SendResource when the receiver
// declined the offer, by choice ([IncomingResource.Reject]) or because it
// could not take it (unsafe name, name exists, no room, unwritable
// directory). Reason is the receiver's text; Code is a machine-readable
// cause where the receiver gave one (PROTOCOL.md, "Resources").
// errors.Is matches [ErrResourceExists], [ErrResourceInProgress] and
// [ErrResourceDiskFull] by it.
type ResourceRejectedError struct {
	Code   string
	Reason string
}

func (e *ResourceRejectedError) Error() string {
	return "nearnet: resource rejected by receiver: " + e.Reason
}

// Is matches the sentinel errors by Code.
func (e *ResourceRejectedError) Is(target error) bool { return resource.CodeIs(e.Code, target) }

// ResourceReceiverError is returned by SendResource when the receiver
// accepted the offer but failed to finish: the content did not verify
// (errors.Is(err, [ErrResourceCorrupted])), the name appeared meanwhile
// ([ErrResourceExists]), its disk filled up ([ErrResourceDiskFull]), the
// sender was idle for longer than the receiver waits ([ErrResourceIdle]),
// or it could not write or rename the file (code "io", Message naming the
// file system's error). The receiver may say so before all the content is
// sent; SendResource then stops sending.
type ResourceReceiverError struct {
	Code    string
	Message string
}

func (e *ResourceReceiverError) Error() string {
	return "nearnet: resource receiver failed: " + e.Message
}

// Is matches the sentinel errors by Code.
func (e *ResourceReceiverError) Is(target error) bool { return resource.CodeIs(e.Code, target) }

// ResourceDroppedError is returned by [IncomingResource.Accept] when the
// receiver ended an accepted transfer itself before the content was
// complete: no byte came for [AcceptOptions.IdleTimeout] (errors.Is(err,
// [ErrResourceIdle]), and Timeout reports true), the disk filled up
// ([ErrResourceDiskFull]), or the file could not be written (code "io").
// The sender was told Reason, and the name is free for another transfer.
//
// What arrived is kept in the partial file at Partial for a resume (Kept
// bytes), unless Partial is "" (nothing was kept: the bounds of
// AcceptOptions left no room for it, or the file could not be created).
type ResourceDroppedError struct {
	Code    string // "idle_timeout", "disk_full" or "io"
	Reason  string // what the sender was told
	Partial string // the partial file kept for a resume; "" if none
	Kept    int64  // the bytes in Partial
	Err     error  // the cause: the file system's error, or nil for an idle sender
}

func (e *ResourceDroppedError) Error() string {
	return (*resource.DroppedError)(e).Error()
}

func (e *ResourceDroppedError) Unwrap() error { return e.Err }

// Is matches the sentinel errors by Code.
func (e *ResourceDroppedError) Is(target error) bool { return resource.CodeIs(e.Code, target) }

// Timeout reports whether the sender was idle, so that a
// ResourceDroppedError is a net.Error like other timeouts.
func (e *ResourceDroppedError) Timeout() bool { return resource.CodeIs(e.Code, ErrResourceIdle) }

// Temporary is false: see net.Error.
func (e *ResourceDroppedError) Temporary() bool { return false }

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
	sent, err := resource.SendOn(ctx, func() (*Stream, error) {
		return c.openStream(ctx, "", nil, wire.StreamKindResource)
	}, resource.Offer(offer), src, resource.Progress(progress))
	return SentResource(sent), exported(err)
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
	got, err := r.in.AcceptAs(ctx, dir, (*resource.AcceptOptions)(opts), r.Peer.Fingerprint, r.Peer.ID.String(), resource.Progress(progress))
	// A graceful close even after a failure: the refusal or failed result
	// just written must reach the sender before the end of the stream.
	r.s.Close()
	return ReceivedResource(got), exported(err)
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
	return stream.Take(ctx, c.resq, c.s.Ended(), c.s.EndErr, c.takeResource)
}

func (c *Conn) takeResource(r *IncomingResource) {
	var s *Stream
	if r != nil {
		s = r.s
	}
	c.streams.Take(s, wire.StreamKindResource)
}

// offerResource reads the offer on a resource stream, in the background,
// and queues it for AcceptResource (its place is reserved).
func (c *Conn) offerResource(s *Stream) {
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		resource.ServeOffer(s, c.n.cfg.HandshakeTimeout, func(in *resource.Incoming) {
			c.resq <- &IncomingResource{ResourceOffer: ResourceOffer(in.Offer), Peer: c.Peer(), c: c, s: s, in: in}
		}, func(err error, refused bool) {
			c.takeResource(nil)
			if !refused { // no offer came (a broken stream, the handshake timeout)
				c.n.cfg.Logger.Debug("nearnet: no resource offer", "peer", c.id.Short(), "err", err)
				s.Abort()
				return
			}
			s.Close() // let the refusal reach the sender
			c.n.cfg.Logger.Debug("nearnet: resource offer refused", "peer", c.id.Short(), "err", err)
			if f := c.n.cfg.OnResourceRefused; f != nil {
				f(c.Peer(), exported(err))
			}
		})
	}()
}

func (r *IncomingResource) String() string {
	return fmt.Sprintf("%q (%d bytes) from %s", r.Name, r.Size, r.Peer.ID.Short())
}
