package resource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Incoming is an offer read from a stream, waiting for [Incoming.Accept]
// or [Incoming.Reject]; call one of them, once. (Closing the stream
// instead is an abort: the sender sees a broken transfer.) It is not safe
// for concurrent use.
type Incoming struct {
	// Offer is what the sender offered. Offer.Name is in NFC
	// ([NormalizeName]) and has passed [SafeName].
	Offer Offer

	stream   io.ReadWriter
	answered bool

	// writeFile writes content to the partial file; nil means
	// (*os.File).Write. Tests put a failing one here.
	writeFile func(f *os.File, b []byte) (int, error)
}

// Received describes a resource that is in place.
type Received struct {
	Path    string   // the file: the target directory joined with Name
	Name    string   // '/'-separated name in the directory; differs from Offer.Name after a rename
	Size    int64    // bytes
	SHA256  [32]byte // of the whole content, checked against the sender's
	Resumed int64    // bytes kept from an earlier attempt; 0 if it started from zero
}

// ReadOffer reads the offer that opens a resource stream. An offer whose
// name fails [SafeName] or that breaks the protocol is rejected on the
// spot, and ReadOffer returns the [*NameError] or [*ProtocolError]. Close
// the stream after an error.
//
// Cancelling ctx stops the read (see [Send] for how); it has no effect
// once ReadOffer has returned.
func ReadOffer(ctx context.Context, stream io.ReadWriter) (*Incoming, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nearnet: resource transfer stopped: %w", context.Cause(ctx))
	}
	stop := abortOnDone(ctx, stream)
	in, err := readOffer(stream)
	return in, finish(ctx, stop, err)
}

func readOffer(stream io.ReadWriter) (*Incoming, error) {
	b, err := readFrame(stream)
	if err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("nearnet: resource stream closed before an offer: %w", err)
		}
		return nil, err
	}
	offer, err := decodeOffer(b)
	if err != nil {
		code, reason := codeProtocol, err.Error()
		var ne *NameError
		var pe *ProtocolError
		switch {
		case errors.As(err, &ne):
			code, reason = codeUnsafeName, "unsafe name: "+ne.Reason
		case errors.As(err, &pe):
			reason = pe.What
			if pe.code != "" {
				code = pe.code
			}
		}
		_ = writeFrame(stream, replyMsg{Code: code, Reason: reason})
		return nil, err
	}
	return &Incoming{Offer: offer, stream: stream}, nil
}

// Reject declines the offer, telling the sender reason (which its
// [*RejectedError] carries). Cancelling ctx stops the write.
func (in *Incoming) Reject(ctx context.Context, reason string) error {
	if in.answered {
		return errors.New("nearnet: resource offer already answered")
	}
	in.answered = true
	stop := abortOnDone(ctx, in.stream)
	err := writeFrame(in.stream, replyMsg{Code: codeDeclined, Reason: reason})
	return finish(ctx, stop, err)
}

// Accept receives the resource into dir, which must exist, and returns
// where it went.
//
// The content goes to a hidden partial file next to the final name
// (".nearnet-partial-" and 32 hex digits), hashed as it arrives. When all
// of it is there and its SHA-256 matches the sender's, the file is synced
// and renamed to its name; only then does the sender hear "ok". Names with
// directories ("album/a.jpg") get their directories created. All paths
// are resolved through [os.Root], so nothing is read or written outside
// dir, whatever symbolic links it holds.
//
// If a partial file from an earlier attempt is there, Accept offers to
// resume after its bytes; the sender checks them against its own and
// either continues or starts over from zero.
//
// Before it accepts, Accept applies the bounds of opts on the partial
// files in dir (see [AcceptOptions.MaxPartials]) and checks the free
// space: an offer that needs more than the file system has free is
// refused (code "disk_full", the free space in the reason, an error
// matching [ErrDiskFull]).
//
// When it fails: a name that exists (and opts allow neither Overwrite nor
// Rename) is rejected, returning an error matching [ErrExists], before any
// byte is sent; content that does not match the sender's SHA-256 deletes
// the partial file and returns [ErrHashMismatch] (the sender sees it too);
// any other failure after the offer was accepted (a broken stream, a
// cancelled ctx, a full disk, a sender silent for opts.IdleTimeout) keeps
// the partial file, so that sending again resumes, unless it holds nothing
// or more than opts.MaxPartialBytes. When the receiver itself ends the
// transfer (a full disk, an idle sender, a write error) it tells the
// sender why at once and returns a [*DroppedError] saying where the
// partial file is. The final name is never left holding a partial file.
// Close the stream after Accept returns, whatever the outcome.
//
// An invalid field of opts refuses the offer and returns a
// [*nnerr.ConfigError] naming it.
//
// Cancelling ctx stops the transfer (see [Send] for how); it has no effect
// once Accept has returned.
func (in *Incoming) Accept(ctx context.Context, dir string, opts *AcceptOptions, progress Progress) (Received, error) {
	if in.answered {
		return Received{}, errors.New("nearnet: resource offer already answered")
	}
	in.answered = true
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	o, err := o.withDefaults()
	if err != nil {
		in.reject(codeIO, "receiver misconfigured")
		return Received{}, err
	}
	if err := ctx.Err(); err != nil {
		return Received{}, fmt.Errorf("nearnet: resource transfer stopped: %w", context.Cause(ctx))
	}
	stop := abortOnDone(ctx, in.stream)
	rcv, err := in.accept(ctx, dir, o, progress)
	if err = finish(ctx, stop, err); err != nil {
		return Received{}, err
	}
	return rcv, nil
}

// reject answers the offer with a refusal; a failure to send it is
// ignored, since the caller reports the reason it refused.
func (in *Incoming) reject(code, reason string) {
	_ = writeFrame(in.stream, replyMsg{Code: code, Reason: reason})
}

// rejectIO refuses the offer for a file system error: the sender hears
// what failed and the file system's reason, the caller gets err.
func (in *Incoming) rejectIO(what, name string, err error) error {
	code, reason := ioReason(what, err)
	in.reject(code, reason)
	if code == codeDiskFull {
		return fmt.Errorf("%w: receiving resource %q: %w", ErrDiskFull, name, err)
	}
	return fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
}

func (in *Incoming) accept(ctx context.Context, dir string, o AcceptOptions, progress Progress) (Received, error) {
	// name and partial are '/'-separated; os.Root gets the local form.
	name, size := in.Offer.Name, in.Offer.Size
	local := filepath.FromSlash
	abs, err := filepath.Abs(dir)
	if err != nil {
		in.reject(codeIO, "receiver cannot find its directory")
		return Received{}, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Received{}, in.rejectIO("receiver cannot open its directory", name, err)
	}
	defer root.Close()

	// Refuse a taken name before any byte is sent; place checks again at
	// the end, atomically.
	if fi, err := root.Lstat(local(name)); err == nil {
		if fi.IsDir() && !o.Rename {
			in.reject(codeExists, "a directory of that name exists")
			return Received{}, fmt.Errorf("%w: %q is a directory", ErrExists, name)
		}
		if !o.Overwrite && !o.Rename {
			in.reject(codeExists, "a file of that name exists")
			return Received{}, fmt.Errorf("%w: %q", ErrExists, name)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Received{}, in.rejectIO("receiver cannot look that name up", name, err)
	}
	if parent := path.Dir(name); parent != "." {
		if err := root.MkdirAll(local(parent), 0o777); err != nil {
			return Received{}, in.rejectIO("receiver cannot create the directories of that name", name, err)
		}
	}

	partial := partialName(o.PartialKey, name, size)
	key := busyKey(abs, partial)
	if !claim(key) {
		in.reject(codeInProgress, "the same resource is already being received")
		return Received{}, fmt.Errorf("%w: %q", ErrInProgress, name)
	}
	ps := &partialState{root: root, dir: partialsOf(abs), p: partial, o: o}
	tellRemoved(o, ps.dir.prune(root, o, false))
	defer func() {
		// What this transfer leaves counts against the bounds, as the
		// newest: the others make room for it.
		ps.settle()
		tellRemoved(o, ps.dir.finish(root, o, partial, key))
	}()

	// Refuse what cannot fit: the offer less what a partial file holds.
	need := size
	if fi, err := root.Lstat(local(partial)); err == nil && fi.Mode().IsRegular() && fi.Size() <= size {
		need -= fi.Size()
	}
	if d, err := root.Open(local(path.Dir(name))); err == nil {
		free, ok := freeSpace(d)
		d.Close()
		if ok && uint64(need) > free {
			in.reject(codeDiskFull, fmt.Sprintf("the receiver's disk is full: the file needs %s more and %s are free", sizeText(need), sizeText(int64(free))))
			return Received{}, fmt.Errorf("%w: %q needs %d more bytes, %d are free", ErrDiskFull, name, need, free)
		}
	}

	f, err := openPartial(root, local(partial), false)
	if err != nil {
		return Received{}, in.rejectIO("receiver cannot create its partial file", name, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return Received{}, in.rejectIO("receiver cannot read its partial file", name, err)
	}

	bs := getBuffers()
	defer bs.put()
	buf := *bs[0]

	// What we have already, and its hash, to offer a resume.
	h := sha256.New()
	have := fi.Size()
	if have > size {
		have = 0
	}
	if have > 0 {
		if err := hashFrom(h, io.NewSectionReader(f, 0, have), have, buf); err != nil {
			have = 0
			h.Reset()
		}
	}
	rep := replyMsg{Accept: true, Offset: have}
	if have > 0 {
		rep.Prefix = hex.EncodeToString(h.Sum(nil))
	}
	if err := writeFrame(in.stream, rep); err != nil {
		return Received{}, fmt.Errorf("nearnet: resource stream: %w", err)
	}

	// From here on every read is watched for an idle sender.
	rd := newIdleReader(in.stream, o.IdleTimeout)
	defer rd.stop()
	idle := func(got int64) error {
		return in.drop(rd, ps, codeIdle,
			fmt.Sprintf("the receiver got no bytes for %v (after %d of %d) and dropped the transfer", o.IdleTimeout, got, size), nil, -1)
	}

	b, err := readFrame(rd)
	if err != nil {
		if errors.Is(err, errIdle) {
			return Received{}, idle(have)
		}
		return Received{}, fmt.Errorf("nearnet: resource stream broke before the content: %w", err)
	}
	off, err := decodeStart(b, have)
	if err != nil {
		return Received{}, err
	}
	if off == 0 && fi.Size() > 0 {
		h.Reset()
		f.Close()
		if f, err = openPartial(root, local(partial), true); err != nil {
			return Received{}, in.drop(rd, ps, codeIO, "receiver cannot create its partial file", err, size)
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return Received{}, in.drop(rd, ps, codeIO, "receiver cannot write its partial file", err, size-off)
	}

	report(progress, off, size)
	wb := newWriteback(f, off)
	sy := newSyncer(f, off)
	defer sy.wait() // before f is closed (deferred earlier)
	write := in.writeFile
	if write == nil {
		write = (*os.File).Write
	}
	consumed := off // content bytes read from the stream
	res := pipe(ctx, bs, off, size, h,
		func(b []byte) (int, error) {
			n, err := io.ReadFull(rd, b)
			consumed += int64(n)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		},
		func(b []byte, end int64) error {
			if _, err := write(f, b); err != nil {
				return err
			}
			wb.wrote(end)
			sy.wrote(end)
			return nil
		},
		func(done int64) { report(progress, done, size) })
	switch {
	case res.writeErr != nil:
		code, reason := ioReason("the receiver could not write the file", res.writeErr)
		reason += fmt.Sprintf(" after %d of %d bytes", res.done, size)
		return Received{}, in.drop(rd, ps, code, reason, res.writeErr, size-consumed)
	case res.ctxErr != nil:
		return Received{}, res.ctxErr // finish reports the cause
	case errors.Is(res.fillErr, errIdle):
		return Received{}, idle(res.done)
	case res.fillErr != nil:
		return Received{}, fmt.Errorf("nearnet: resource stream broke after %d of %d bytes (kept for resume): %w", res.done, size, res.fillErr)
	}

	b, err = readFrame(rd)
	if err != nil {
		if errors.Is(err, errIdle) {
			return Received{}, idle(size)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Received{}, fmt.Errorf("nearnet: resource stream broke before the trailer (content kept for resume): %w", err)
	}
	rd.stop()
	want, err := decodeTrailer(b)
	if err != nil {
		return Received{}, err
	}
	sum := [32]byte(h.Sum(nil))
	if sum != want {
		f.Close()
		f = nil
		_ = root.Remove(local(partial))
		in.result(codeHashMismatch, "content SHA-256 does not match the sender's")
		return Received{}, ErrHashMismatch
	}
	if err := sy.sync(); err != nil {
		code, reason := ioReason("the receiver could not write the file", err)
		return Received{}, in.drop(nil, ps, code, reason, err, -1)
	}
	err = f.Close()
	f = nil
	if err != nil {
		code, reason := ioReason("the receiver could not write the file", err)
		return Received{}, in.drop(nil, ps, code, reason, err, -1)
	}
	final, err := place(root, partial, name, o)
	if err != nil {
		code, msg := ioReason("the receiver could not put the file in place", err)
		if errors.Is(err, ErrExists) {
			code, msg = codeExists, "a file of that name appeared during the transfer"
		}
		in.result(code, msg)
		return Received{}, err
	}
	// The file is in place and verified: a failure to tell the sender
	// does not undo that, so it is not an error here.
	_ = writeFrame(in.stream, resultMsg{OK: true})
	return Received{
		Path:    filepath.Join(dir, local(final)),
		Name:    final,
		Size:    size,
		SHA256:  sum,
		Resumed: off,
	}, nil
}

// drop ends an accepted transfer that the receiver cannot go on with. It
// tells the sender at once why, and what it keeps; then, if drain >= 0,
// it reads and discards the drain content bytes still to come and the
// trailer, so that a sender that is still writing is not reset and reads
// the result (a sender that reads the result as it comes stops sooner,
// closing the stream). It returns the *DroppedError for the caller.
func (in *Incoming) drop(rd *idleReader, ps *partialState, code, reason string, cause error, drain int64) error {
	path, kept := ps.settle()
	msg := reason + "; it kept nothing"
	if path != "" {
		msg = fmt.Sprintf("%s; it keeps the %d bytes it has for a resume", reason, kept)
	}
	in.result(code, msg)
	if drain >= 0 && rd != nil {
		if _, err := io.CopyN(io.Discard, rd, drain); err == nil {
			_, _ = readFrame(rd)
		}
	}
	return &DroppedError{Code: code, Reason: msg, Partial: path, Kept: kept, Err: cause}
}

// partialState is the partial file of one transfer.
type partialState struct {
	root *os.Root
	dir  *partialDir
	p    string // '/'-separated path in the directory
	o    AcceptOptions
}

// settle decides what the transfer leaves: its partial file if that holds
// bytes and no more than MaxPartialBytes, or nothing. It returns the
// file's path and size, or "" and 0.
func (ps *partialState) settle() (string, int64) {
	local := filepath.FromSlash(ps.p)
	fi, err := ps.root.Lstat(local)
	if err != nil || !fi.Mode().IsRegular() {
		ps.dir.forget(ps.p)
		return "", 0
	}
	full := filepath.Join(ps.dir.abs, local)
	if n := fi.Size(); n == 0 || n > ps.o.MaxPartialBytes {
		if err := ps.root.Remove(local); err == nil || errors.Is(err, fs.ErrNotExist) {
			ps.dir.forget(ps.p)
			if n > 0 {
				tellRemoved(ps.o, []removedPartial{{full, n, fmt.Sprintf("it holds more than %d bytes (MaxPartialBytes)", ps.o.MaxPartialBytes)}})
			}
			return "", 0
		}
	}
	ps.dir.track(ps.root, ps.p)
	return full, fi.Size()
}

// sizeText writes n bytes for people: "20.0 MiB (20971520 bytes)".
func sizeText(n int64) string {
	const unit = 1 << 10
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTPE"[exp], n)
}

// openPartial opens the partial file p for reading and writing, creating
// it if needed. Anything but a regular file in its place (a planted link)
// is removed first. With fresh, an existing partial file is removed
// rather than truncated, so that a name sharing its content (a hard link
// left by a failed cleanup) is never changed.
func openPartial(root *os.Root, p string, fresh bool) (*os.File, error) {
	if fi, err := root.Lstat(p); err == nil && (fresh || !fi.Mode().IsRegular()) {
		if err := root.Remove(p); err != nil {
			return nil, err
		}
	}
	flag := os.O_RDWR | os.O_CREATE
	if fresh {
		flag |= os.O_EXCL
	}
	f, err := root.OpenFile(p, flag, 0o666)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", p)
		}
		return nil, err
	}
	return f, nil
}

func (in *Incoming) result(code, msg string) {
	_ = writeFrame(in.stream, resultMsg{Code: code, Error: msg})
}

// place gives the complete partial file its name, without replacing
// anything unless o.Overwrite. It takes and returns '/'-separated names.
func place(root *os.Root, partial, name string, o AcceptOptions) (string, error) {
	local := filepath.FromSlash
	partial = local(partial)
	if o.Overwrite {
		if err := root.Rename(partial, local(name)); err != nil {
			return "", fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
		}
		return name, nil
	}
	tries := 1
	if o.Rename {
		tries = 1000
	}
	for i := range tries {
		cand := name
		if i > 0 {
			cand = numbered(name, i)
		}
		// A hard link fails if the name exists, so it cannot replace a
		// file that appeared meanwhile; where links are not supported
		// (FAT) fall back to a check and a rename.
		err := root.Link(partial, local(cand))
		if err == nil {
			_ = root.Remove(partial)
			return cand, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			_, lerr := root.Lstat(local(cand))
			switch {
			case errors.Is(lerr, fs.ErrNotExist):
				if err := root.Rename(partial, local(cand)); err != nil {
					return "", fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
				}
				return cand, nil
			case lerr != nil:
				return "", fmt.Errorf("nearnet: receiving resource %q: %w", name, lerr)
			}
		}
	}
	return "", fmt.Errorf("%w: %q", ErrExists, name)
}

// numbered returns name with " (i)" before its extension: "a/b (2).txt",
// "c (2).tar.gz", ".profile (2)".
func numbered(name string, i int) string {
	dir, base := path.Split(name)
	stem, ext := base, ""
	if j := strings.LastIndexByte(base[1:], '.'); j >= 0 {
		stem, ext = base[:j+1], base[j+1:]
		if s := strings.TrimSuffix(stem, ".tar"); s != stem && s != "" {
			stem, ext = s, ".tar"+ext
		}
	}
	suffix := fmt.Sprintf(" (%d)", i)
	// Keep the component within MaxComponentLen, cutting the stem at a
	// rune boundary.
	for len(stem)+len(suffix)+len(ext) > MaxComponentLen && stem != "" {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	return dir + stem + suffix + ext
}
