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
}

// AcceptOptions says how [Incoming.Accept] treats an existing file and
// where it keeps partial files. The zero value (or nil) never overwrites.
type AcceptOptions struct {
	// Overwrite replaces a file of the offered name. A directory of that
	// name is never replaced.
	Overwrite bool

	// Rename picks the first free name of "name (1).ext", "name (2).ext",
	// ... "name (999).ext" if the offered name is taken. It cannot be set
	// with Overwrite. If neither is set, a taken name fails with
	// [ErrExists].
	Rename bool

	// PartialKey names the sender, for example by its certificate
	// fingerprint or peer ID; it goes into the partial file's name, so a
	// resend from the same sender finds its partial file and another
	// sender's file of the same name and size does not. If empty, all
	// senders share partial files: still safe, since a partial file is
	// only resumed from when its content hash matches the sender's, but
	// one sender's resend may discard another's progress.
	PartialKey string
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
// When it fails: a name that exists (and opts allow neither Overwrite nor
// Rename) is rejected, returning an error matching [ErrExists], before any
// byte is sent; content that does not match the sender's SHA-256 deletes
// the partial file and returns [ErrHashMismatch] (the sender sees it too);
// any other failure after the offer was accepted (a broken stream, a
// cancelled ctx, a full disk) keeps the partial file, so that sending again
// resumes. The final name is never left holding a partial file. Close the
// stream after Accept returns, whatever the outcome.
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
	if o.Overwrite && o.Rename {
		in.reject(codeIO, "receiver misconfigured")
		return Received{}, errors.New("nearnet: invalid AcceptOptions: Overwrite and Rename cannot both be set")
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

func (in *Incoming) accept(ctx context.Context, dir string, o AcceptOptions, progress Progress) (Received, error) {
	// name and partial are '/'-separated; os.Root gets the local form.
	name, size := in.Offer.Name, in.Offer.Size
	local := filepath.FromSlash
	abs, err := filepath.Abs(dir)
	if err != nil {
		in.reject(codeIO, "receiver cannot write to its directory")
		return Received{}, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		in.reject(codeIO, "receiver cannot write to its directory")
		return Received{}, fmt.Errorf("nearnet: receiving resource: %w", err)
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
		in.reject(codeIO, "receiver cannot write that name")
		return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
	}
	if parent := path.Dir(name); parent != "." {
		if err := root.MkdirAll(local(parent), 0o777); err != nil {
			in.reject(codeIO, "receiver cannot write that name")
			return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
		}
	}

	partial := partialName(o.PartialKey, name, size)
	key := busyKey(abs, partial)
	if !claim(key) {
		in.reject(codeInProgress, "the same resource is already being received")
		return Received{}, fmt.Errorf("%w: %q", ErrInProgress, name)
	}
	defer release(key)

	f, err := openPartial(root, local(partial), false)
	if err != nil {
		in.reject(codeIO, "receiver cannot write that name")
		return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		in.reject(codeIO, "receiver cannot write that name")
		return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
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

	b, err := readFrame(in.stream)
	if err != nil {
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
			return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
	}

	report(progress, off, size)
	wb := newWriteback(f, off)
	sy := newSyncer(f, off)
	defer sy.wait() // before f is closed (deferred earlier)
	res := pipe(ctx, bs, off, size, h,
		func(b []byte) (int, error) {
			n, err := io.ReadFull(in.stream, b)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		},
		func(b []byte, end int64) error {
			if _, err := f.Write(b); err != nil {
				return err
			}
			wb.wrote(end)
			sy.wrote(end)
			return nil
		},
		func(done int64) { report(progress, done, size) })
	switch {
	case res.writeErr != nil:
		return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, res.writeErr)
	case res.ctxErr != nil:
		return Received{}, res.ctxErr // finish reports the cause
	case res.fillErr != nil:
		return Received{}, fmt.Errorf("nearnet: resource stream broke after %d of %d bytes (kept for resume): %w", res.done, size, res.fillErr)
	}

	b, err = readFrame(in.stream)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Received{}, fmt.Errorf("nearnet: resource stream broke before the trailer (content kept for resume): %w", err)
	}
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
		in.result(codeIO, "receiver could not write the file")
		return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		in.result(codeIO, "receiver could not write the file")
		return Received{}, fmt.Errorf("nearnet: receiving resource %q: %w", name, err)
	}
	final, err := place(root, partial, name, o)
	if err != nil {
		code, msg := codeIO, "receiver could not put the file in place"
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
