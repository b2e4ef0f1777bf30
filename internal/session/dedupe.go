package session

// Duplicate connections (PROTOCOL.md, "Duplicate connections"): when both
// peers dial each other at once, a Conn briefly has two links and both
// sides must drop the same one without talking about it.

// Dup is what duplicate resolution knows of a link.
type Dup interface {
	Outgoing() bool // this side dialed it
	Key() string    // its Sec-WebSocket-Key, the same on both sides
}

// Better reports whether link a should survive over link b. localGreater
// says whether this side's PeerID is the greater of the two. Both peers
// compute the same answer: the side with the greater PeerID drops its
// outgoing link, the other its incoming one; two links in the same
// direction keep the one with the smaller Sec-WebSocket-Key.
func Better(localGreater bool, a, b Dup) bool {
	aWorse, bWorse := a.Outgoing() == localGreater, b.Outgoing() == localGreater
	if aWorse != bWorse {
		return !aWorse
	}
	return a.Key() < b.Key()
}
