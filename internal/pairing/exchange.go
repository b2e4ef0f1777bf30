package pairing

import (
	"errors"
	"fmt"

	"github.com/nearnet/nearnet/internal/link"
	"github.com/nearnet/nearnet/internal/wire"
	"github.com/nearnet/nearnet/security"
)

// LocalError is a fault this side found in a run (a code mismatch, a
// malformed message, both sides in one role): unlike the peer's close or a
// broken connection, the peer is to be told, with close code 4007.
type LocalError struct{ Err error }

func (e *LocalError) Error() string { return e.Err.Error() }
func (e *LocalError) Unwrap() error { return e.Err }

func local(err error) error { return &LocalError{Err: err} }

// Dial runs the dialer's side of the exchange on l, whose TLS handshake is
// done, to addr: the upgrade request with this side's CPace message behind
// it, the listener's message and tag, this side's tag (sent before the
// listener's tag is checked, so a mismatch shows on both sides at once).
// It returns nil once the listener's tag verified: pin run.Peer(). The
// caller closes l on an error, telling the peer for a *LocalError.
func Dial(l *link.Link, addr string, run *security.Pairing) error {
	if err := l.SendUpgrade(addr, wire.AppendPair(nil, wire.KindPair, run.Message())); err != nil {
		return err
	}
	if err := l.ReadUpgradeResponse(); err != nil {
		return err
	}
	theirs, err := read(l, wire.KindPair)
	if err != nil {
		return err
	}
	tag, err := run.Receive(theirs)
	if err != nil {
		return local(err)
	}
	if err := l.SendHandshake(wire.AppendPair(nil, wire.KindPairConfirm, tag)); err != nil {
		return err
	}
	return confirm(l, run)
}

// First checks the dialer's first message, which asked to pair, and
// returns its CPace message.
func First(first []byte) ([]byte, error) {
	k, theirs, err := wire.ParsePair(first)
	if err != nil {
		return nil, local(err)
	}
	if k != wire.KindPair {
		return nil, local(&wire.ProtocolError{What: "a pairing confirmation before the pairing message"})
	}
	return theirs, nil
}

// Accept runs the listener's side of the exchange on l after the
// upgrade, given the dialer's CPace message (First): this side's message
// and tag in one flight, then the dialer's tag. It returns nil once the
// dialer's tag verified: pin run.Peer(). The caller closes l on an error,
// telling the peer for a *LocalError.
func Accept(l *link.Link, theirs []byte, run *security.Pairing) error {
	tag, err := run.Receive(theirs)
	if err != nil {
		return local(err)
	}
	if err := l.SendHandshake(wire.AppendPair(nil, wire.KindPair, run.Message()), wire.AppendPair(nil, wire.KindPairConfirm, tag)); err != nil {
		return err
	}
	return confirm(l, run)
}

// confirm reads and checks the peer's tag.
func confirm(l *link.Link, run *security.Pairing) error {
	theirTag, err := read(l, wire.KindPairConfirm)
	if err != nil {
		return err
	}
	if err := run.Confirm(theirTag); err != nil {
		return local(err)
	}
	return nil
}

// read reads the peer's next message, which must be a pairing message of
// kind want (or a close frame: a *link.CloseFrameError).
func read(l *link.Link, want wire.Kind) ([]byte, error) {
	_, m, err := l.ReadFirst()
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, local(&wire.ProtocolError{What: "a hello where a pairing message belongs"})
	}
	k, body, err := wire.ParsePair(m)
	if err != nil {
		return nil, local(err)
	}
	if k != want {
		return nil, local(&wire.ProtocolError{What: fmt.Sprintf("pairing message kind %#x, want %#x", byte(k), byte(want))})
	}
	return body, nil
}

// IsMismatch reports a code mismatch, which both sides find.
func IsMismatch(err error) bool { return errors.Is(err, security.ErrPairingCodeMismatch) }
