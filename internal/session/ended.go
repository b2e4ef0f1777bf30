package session

import "github.com/nearnet/nearnet/internal/wire"

// Ended is what the end of a link means for its session, once the link is
// detached (Links.Remove) and the session goes on.
type Ended int

const (
	// Continue: other links remain; if the one that ended was the send
	// link, the best of them takes over (Links.Best, Links.Promote).
	Continue Ended = iota
	// SwapFailed: a link died while a duplicate was being swapped;
	// messages in flight on it are lost, so the session fails.
	SwapFailed
	// AwaitSuccessor: the peer dropped the last link as a duplicate; its
	// successor is on the way. Wait for it, but not forever.
	AwaitSuccessor
	// Suspend: keep the session and wait for a new link to resume it (the
	// peer asked to with 4006, or the transport broke).
	Suspend
	// PeerClosed: the peer closed the session cleanly; readers get io.EOF
	// after the queue.
	PeerClosed
	// PeerFailed: the peer closed with an error code.
	PeerFailed
	// Fail: the transport failed and the session cannot resume.
	Fail
)

// LinkEnded decides what the end of a link means: left is how many links
// remain attached, peerClosed and code say whether and how the peer closed
// it (a close frame, or the transport's close code), canResume whether the
// session resumes (on both sides, and not closed by us), and resumable
// whether the error it ended with leaves the session worth resuming (the
// network or the peer's host ended the transport, not bad input).
func LinkEnded(left int, peerClosed bool, code int, canResume, resumable bool) Ended {
	dup := peerClosed && code == wire.CloseDuplicate
	if left > 0 {
		if !peerClosed || !(dup || code == wire.CloseNormal || code == wire.CloseGoingAway) {
			return SwapFailed
		}
		return Continue
	}
	switch {
	case dup:
		return AwaitSuccessor
	case peerClosed && code == wire.CloseResume && canResume:
		return Suspend
	case peerClosed && (code == wire.CloseNormal || code == wire.CloseGoingAway || code == wire.CloseNoStatus):
		return PeerClosed
	case peerClosed:
		return PeerFailed
	case canResume && resumable:
		return Suspend
	}
	return Fail
}
