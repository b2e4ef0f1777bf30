package resource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Offer describes a resource: what the receiver sees before it decides.
type Offer struct {
	// Name is the file's name, or its '/'-separated path inside a
	// directory being sent ("album/a.jpg"). It must pass [SafeName].
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
// called [Send] or [Incoming.Accept], with done the bytes the receiver
// holds (or the sender has sent) and total the resource's size. The first
// call has done at the resume offset, the last done == total; done never
// decreases. It is called about every MiB, so it should return
// quickly: it is on the transfer's path.
type Progress func(done, total int64)

// Sent describes a resource the receiver has verified and put in place.
type Sent struct {
	SHA256  [32]byte // of the whole content, as the receiver checked it
	Resumed int64    // bytes the receiver kept from an earlier attempt; 0 if it started from zero
}

// Send offers a resource on stream and, if the receiver accepts, sends
// the first offer.Size bytes of src. It returns a nil error only once the
// receiver has checked the content's SHA-256 and put the file in place.
//
// stream carries this one transfer (a fresh stream per resource); Send
// neither closes it nor reads past the receiver's result. Close it after
// Send returns, whatever the outcome: that is also what unblocks the
// receiver after a failure. From the start of the content on, Send reads
// the receiver's result while it writes, so that a receiver that gives up
// early (its disk full) stops it at once with the reason; on an error it
// ends that read by setting the stream's read deadline in the past, if
// the stream has one (otherwise the read ends when stream is closed).
//
// If src implements [io.ReaderAt] (an *os.File, *bytes.Reader,
// *io.SectionReader), content is read with ReadAt from offset 0,
// regardless of any read position, and an interrupted transfer resumes:
// when the receiver already has the first k bytes from an earlier attempt,
// Send reads its own first k bytes, and if their SHA-256 matches the
// receiver's, sends only the rest. Otherwise src is read from its current
// position and a transfer always starts from zero.
//
// Errors: [*RejectedError] if the receiver declined (errors.Is matches
// [ErrExists] when the name was taken, [ErrDiskFull] when it had no room);
// [*ReceiverError] if it accepted but failed (errors.Is matches
// [ErrHashMismatch] when the bytes were corrupted, [ErrDiskFull] when its
// disk filled up, [ErrIdleTimeout] when it waited too long for the next
// byte); [ErrShortSource] (wrapped) if src held fewer than Size bytes;
// [*NameError] for an unsafe Name; [*ProtocolError] for a peer
// that breaks the protocol; otherwise the stream's or src's error.
//
// Cancelling ctx stops the transfer: it is checked between chunks and
// before the trailer that completes the transfer, and a blocked read or write is ended by setting the stream's deadline in the
// past (or, without SetDeadline, by closing the stream). Send then returns
// an error wrapping the context's cause. After Send returns, ctx has no
// effect.
func Send(ctx context.Context, stream io.ReadWriter, offer Offer, src io.Reader, progress Progress) (Sent, error) {
	if err := checkName(offer.Name); err != nil {
		return Sent{}, err
	}
	if offer.Size < 0 || offer.Size > maxSize {
		return Sent{}, fmt.Errorf("nearnet: invalid Offer.Size %d: must be in [0, 2^53-1]", offer.Size)
	}
	if err := ctx.Err(); err != nil {
		return Sent{}, fmt.Errorf("nearnet: resource transfer stopped: %w", context.Cause(ctx))
	}
	stop := abortOnDone(ctx, stream)
	sent, err := send(ctx, stream, offer, src, progress)
	if err = finish(ctx, stop, err); err != nil {
		return Sent{}, err
	}
	return sent, nil
}

func send(ctx context.Context, stream io.ReadWriter, offer Offer, src io.Reader, progress Progress) (Sent, error) {
	size := offer.Size
	frame, err := appendFrame(nil, offerMsg{V: version, Name: offer.Name, Size: &size, Meta: offer.Meta})
	if err != nil {
		return Sent{}, err
	}
	if _, err := stream.Write(frame); err != nil {
		return Sent{}, fmt.Errorf("nearnet: sending resource offer: %w", err)
	}
	b, err := readFrame(stream)
	if err != nil {
		return Sent{}, fmt.Errorf("nearnet: reading the receiver's answer to a resource offer: %w", err)
	}
	rep, err := decodeReply(b, size)
	if err != nil {
		return Sent{}, err
	}
	if !rep.accept {
		return Sent{}, &RejectedError{Code: rep.code, Reason: rep.reason}
	}

	bs := getBuffers()
	defer bs.put()
	buf := *bs[0]

	h := sha256.New()
	start := int64(0)
	ra, canResume := src.(io.ReaderAt)
	if rep.offset > 0 && canResume {
		// Hash our own first rep.offset bytes; h then holds the state to
		// continue from if they match.
		if err := hashFrom(h, io.NewSectionReader(ra, 0, rep.offset), rep.offset, buf); err != nil {
			return Sent{}, err
		}
		if [32]byte(h.Sum(nil)) == rep.prefix {
			start = rep.offset
		} else {
			h.Reset()
		}
	}
	if err := writeFrame(stream, startMsg{Offset: &start}); err != nil {
		return Sent{}, fmt.Errorf("nearnet: resource stream: %w", err)
	}
	// The receiver's result may come before the content is all sent (its
	// disk filled up, it gave up on an idle sender): read it as it comes,
	// and stop sending then.
	rr := readResult(stream)
	defer rr.stop()
	pctx, stopPipe := context.WithCancel(ctx)
	defer stopPipe()
	stopOnResult := context.AfterFunc(rr.ctx, stopPipe)
	defer stopOnResult()

	r := src
	if canResume {
		r = io.NewSectionReader(ra, start, size-start)
	}
	report(progress, start, size)
	res := pipe(pctx, bs, start, size, h,
		func(b []byte) (int, error) { return io.ReadFull(r, b) },
		func(b []byte, _ int64) error { _, err := stream.Write(b); return err },
		func(done int64) { report(progress, done, size) })
	if early, ok := rr.early(res.writeErr != nil); ok && ctx.Err() == nil {
		return Sent{}, early
	}
	switch {
	case res.writeErr != nil:
		return Sent{}, fmt.Errorf("nearnet: resource stream broke after %d of %d bytes: %w", res.done, size, res.writeErr)
	case res.ctxErr != nil && ctx.Err() != nil:
		return Sent{}, ctx.Err() // finish reports the cause
	case res.ctxErr != nil:
		// The read of the result ended without one: the receiver closed
		// or reset the stream.
		return Sent{}, fmt.Errorf("nearnet: resource stream broke after %d of %d bytes: %w", res.done, size, rr.err)
	case res.fillErr != nil:
		return Sent{}, sourceErr(res.fillErr, res.done, size)
	case ctx.Err() != nil:
		// Cancelled while the last chunks were on their way: without the
		// trailer the receiver keeps them for a resume.
		return Sent{}, ctx.Err()
	}
	sum := [32]byte(h.Sum(nil))
	if err := writeFrame(stream, trailerMsg{SHA256: hex.EncodeToString(sum[:])}); err != nil {
		return Sent{}, fmt.Errorf("nearnet: resource stream: %w", err)
	}
	<-rr.ctx.Done()
	if rr.err != nil {
		return Sent{}, fmt.Errorf("nearnet: reading the receiver's result for a resource: %w", rr.err)
	}
	if err := decodeResult(rr.b); err != nil {
		return Sent{}, err
	}
	return Sent{SHA256: sum, Resumed: start}, nil
}

// resultReader reads the receiver's result, in a goroutine of its own,
// from the start of the content on. ctx is done once it has: then b or
// err holds what it read.
type resultReader struct {
	stream io.Reader
	ctx    context.Context
	b      []byte
	err    error
}

func readResult(stream io.Reader) *resultReader {
	ctx, done := context.WithCancel(context.Background())
	rr := &resultReader{stream: stream, ctx: ctx}
	go func() {
		defer done()
		rr.b, rr.err = readFrame(stream)
	}()
	return rr
}

// resultGrace is how long a sender whose write failed waits for the
// receiver's result: a receiver writes it before it closes the stream, so
// it is normally there already.
const resultGrace = 5 * time.Second

// early returns the receiver's result as an error if it came before the
// content was all sent: a failure, said before the trailer. After a
// write error (wait), it waits up to resultGrace for the read to end,
// since the receiver may have said why before it closed the stream.
func (rr *resultReader) early(wait bool) (error, bool) {
	if wait {
		t := time.NewTimer(resultGrace)
		select {
		case <-rr.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	select {
	case <-rr.ctx.Done():
	default:
		return nil, false
	}
	if rr.err != nil {
		return nil, false
	}
	if err := decodeResult(rr.b); err != nil {
		return err, true
	}
	return protoErr("result \"ok\" before the trailer"), true
}

// stop ends the read, if it is still waiting, by setting the stream's read
// deadline in the past; a stream without one is left for the caller's
// Close to end it.
func (rr *resultReader) stop() {
	select {
	case <-rr.ctx.Done():
		return
	default:
	}
	if d, ok := rr.stream.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Unix(1, 0))
		<-rr.ctx.Done()
	}
}

// hashFrom feeds the first n bytes of r to h.
func hashFrom(h hash.Hash, r io.Reader, n int64, buf []byte) error {
	for done := int64(0); done < n; {
		m, err := io.ReadFull(r, buf[:min(int64(len(buf)), n-done)])
		h.Write(buf[:m])
		done += int64(m)
		if err != nil {
			return sourceErr(err, done, n)
		}
	}
	return nil
}

func sourceErr(err error, done, size int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: it ended after %d of %d bytes", ErrShortSource, done, size)
	}
	return fmt.Errorf("nearnet: reading resource source after %d of %d bytes: %w", done, size, err)
}
