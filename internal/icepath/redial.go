package icepath

import (
	"context"
	"net/netip"
	"time"
)

// A TURN server that restarts loses every allocation: a session running
// beyond the LAN on a relayed path loses the path, and with it the
// per-session mailboxes the two sides exchanged, so nothing of the session
// is left to meet again through. What outlives it is the peer's listening
// mailbox of first contact: the peer's node opens a new one once the
// server is back and puts it in its wide-area record (first.go). So the
// redial of a session that ran beyond the LAN, once its ICE path is dead,
// makes a first contact again: it reads the peer's record anew (Lookup:
// the mailbox may have moved) and knocks on that mailbox with an offer;
// the new ICE path carries QUIC and the ordinary resume hello, and the
// session owns the new path in place of the dead one (claim).
//
// Only the side that redials (the one that dialed the link that broke)
// does this, and only through a mailbox it can find: the peer's record, or
// the mailbox it reached the peer through by first contact. The other side
// waits (its listening mailbox answers the offer). A session whose
// redialing side finds no mailbox (the peer registers in no domain this
// node browses, or has no TURN server over UDP) is lost when the resume
// window ends, as before.

// redialWait bounds a redial's first contact while nothing answers: the
// TURN server's allocation (it may still be down) and the answer to the
// knocks (the mailbox may be gone). The checks and QUIC's handshake that
// follow are bounded by the handshake timeout.
const redialWait = 3 * time.Second

// answeringTime is how long a path may go without a packet and still be
// tried by the redial: two of ICE's keepalive intervals. A relayed path
// whose TURN server restarted stops answering at once, and QUIC's
// handshake over it would only time out.
const answeringTime = 2 * time.Second

// lookupTime bounds the reading of the peer's record on each redial.
const lookupTime = 2 * time.Second

// redialFirst resumes ic's session by first contact through the peer's
// listening mailbox, if this side can find one; it reports whether the
// session resumed.
func (ni *Node) redialFirst(ctx context.Context, ic *iceConn) bool {
	ic.mu.Lock()
	known := ic.firstMbx
	ic.mu.Unlock()
	mbx := ni.peerListening(ctx, ic.s.Peer().ID, known)
	if mbx == "" {
		return false
	}
	s := ic.s
	l, err := ni.c.Dials.Dial(ctx, firstTransport{ni: ni, wait: redialWait}, mailboxPrefix+mbx, s, 0)
	if err == nil {
		err = ni.c.Attach(l)
	}
	if err != nil {
		ni.log.Debug("nearnet: ICE: resume by first contact failed", "peer", short(s), "mailbox", mbx, "err", err)
		return false
	}
	ni.log.Debug("nearnet: ICE: resumed by first contact", "peer", short(s), "mailbox", mbx)
	return true
}

// peerListening is peer id's listening mailbox: the one in its
// wide-area record now, else known, the one this side reached it through
// ("" if neither).
func (ni *Node) peerListening(ctx context.Context, id [16]byte, known string) string {
	if ni.c.Lookup != nil {
		lctx, cancel := context.WithTimeout(ctx, lookupTime)
		txt := ni.c.Lookup(lctx, id)
		cancel()
		if ap, err := netip.ParseAddrPort(txt[TXTMailbox]); err == nil && ap.Port() != 0 {
			return ap.String()
		}
	}
	return known
}
