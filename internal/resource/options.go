package resource

import (
	"fmt"
	"time"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// Defaults of [AcceptOptions]: what a zero field means.
const (
	// DefaultIdleTimeout is how long an accepted transfer waits for the
	// sender's next byte.
	DefaultIdleTimeout = 30 * time.Second

	// DefaultMaxPartials is how many partial files a receive directory
	// keeps from transfers that are not running.
	DefaultMaxPartials = 64

	// DefaultMaxPartialBytes bounds the total size of those files.
	DefaultMaxPartialBytes int64 = 16 << 30

	// DefaultMaxPartialAge is how long a partial file is kept after it
	// was last written.
	DefaultMaxPartialAge = 7 * 24 * time.Hour
)

// AcceptOptions says how [Incoming.Accept] treats an existing file, how
// long it waits for a silent sender, and what it keeps of transfers that
// did not finish. The zero value (or nil) never overwrites and uses the
// documented defaults. An invalid field makes Accept refuse the offer and
// return a [*nnerr.ConfigError] naming it.
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

	// IdleTimeout is how long Accept waits for the sender's next byte,
	// from its acceptance until the trailer. When it passes, Accept tells
	// the sender (code "idle_timeout"), keeps what arrived for a resume,
	// frees the name for another transfer, and returns a [*DroppedError]
	// matching [ErrIdleTimeout]. Time the receiver itself spends (writing
	// to a slow disk) does not count. If zero, [DefaultIdleTimeout] (30
	// seconds); it must not be negative.
	IdleTimeout time.Duration

	// MaxPartials bounds the partial files Accept leaves in the target
	// directory (at any depth) from transfers that are not running: when
	// a transfer starts and when one ends without finishing, the oldest
	// (last written longest ago) are deleted until at most MaxPartials
	// are left. A partial file being written is never deleted. If zero,
	// [DefaultMaxPartials] (64); it must not be negative.
	MaxPartials int

	// MaxPartialBytes bounds the total size of the partial files kept as
	// MaxPartials bounds their number, oldest deleted first. A transfer
	// that ends holding more than MaxPartialBytes keeps nothing. If zero,
	// [DefaultMaxPartialBytes] (16 GiB); it must not be negative.
	MaxPartialBytes int64

	// MaxPartialAge is how long a partial file is kept after it was last
	// written: Accept deletes older ones in the target directory. If
	// zero, [DefaultMaxPartialAge] (7 days); it must not be negative.
	MaxPartialAge time.Duration

	// PartialRemoved, if set, is called for each partial file Accept
	// deletes to keep within MaxPartials, MaxPartialBytes and
	// MaxPartialAge, with its path, its size and why. It is called from
	// the goroutine that called Accept, outside any lock of this package.
	PartialRemoved func(path string, size int64, reason string)
}

// withDefaults checks o and returns it with the zero fields set to their
// defaults; an invalid field is a *nnerr.ConfigError naming it.
func (o AcceptOptions) withDefaults() (AcceptOptions, error) {
	bad := func(field string, v any, reason string) error {
		return &nnerr.ConfigError{Field: "AcceptOptions." + field, Value: v, Reason: reason}
	}
	switch {
	case o.Overwrite && o.Rename:
		return o, bad("Rename", true, "cannot be set with Overwrite")
	case o.IdleTimeout < 0:
		return o, bad("IdleTimeout", o.IdleTimeout, fmt.Sprintf("must be 0 (%v) or more", DefaultIdleTimeout))
	case o.MaxPartials < 0:
		return o, bad("MaxPartials", o.MaxPartials, fmt.Sprintf("must be 0 (%d) or more", DefaultMaxPartials))
	case o.MaxPartialBytes < 0:
		return o, bad("MaxPartialBytes", o.MaxPartialBytes, "must be 0 (16 GiB) or more")
	case o.MaxPartialAge < 0:
		return o, bad("MaxPartialAge", o.MaxPartialAge, "must be 0 (7 days) or more")
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxPartials == 0 {
		o.MaxPartials = DefaultMaxPartials
	}
	if o.MaxPartialBytes == 0 {
		o.MaxPartialBytes = DefaultMaxPartialBytes
	}
	if o.MaxPartialAge == 0 {
		o.MaxPartialAge = DefaultMaxPartialAge
	}
	return o, nil
}
