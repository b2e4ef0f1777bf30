package icepath

import (
	"github.com/nearnet/nearnet/internal/session"
)

// A path switch should delay messages by less than one drop time: the
// LAN link's dialer does not wait for the drop time to end a LAN link
// that stopped answering (its keepalive pings unanswered, its interface
// down) but resumes the session on the ICE path standing by at once,
// while the ICE path still answers. The resume replaces the LAN link (an
// ordinary resume: nothing lost or delivered twice), and the return to
// the LAN (returnToLAN) moves the session back once the LAN answers
// again, as after any move.

// inviable is told that s's send link stopped getting answers (s's lock
// held).
func (ni *Node) inviable(s *session.Session) {
	ni.mu.Lock()
	ic := ni.conns[s]
	ni.mu.Unlock()
	if ic == nil || !ic.controlling {
		return
	}
	ic.mu.Lock()
	start := !ic.switching && ic.path != nil && !ic.lanDialing
	ic.switching = ic.switching || start
	ic.mu.Unlock()
	if start {
		ni.c.Go(func() { ni.switchEarly(ic) })
	}
}

// switchEarly resumes ic's session over its ICE path if it still runs on
// a LAN link and the path answers.
func (ni *Node) switchEarly(ic *iceConn) {
	defer func() {
		ic.mu.Lock()
		ic.switching = false
		ic.mu.Unlock()
	}()
	s := ic.s
	cur := s.SendPath()
	if cur == nil || s.Viable() {
		return // suspended (the redial moves it), or answering again
	}
	ni.mu.Lock()
	overICE := ni.paths[cur.T] != nil
	ni.mu.Unlock()
	ic.mu.Lock()
	p := ic.path
	ic.mu.Unlock()
	if overICE || p == nil || !p.Alive() {
		return
	}
	ctx, cancel := ni.ctxFor(s, ni.c.QUIC.HandshakeTimeout)
	defer cancel()
	if err := ni.dialOver(ctx, ic, p.Lease(), p, "ice"); err != nil {
		ni.log.Debug("nearnet: ICE: early move to the path failed", "peer", short(s), "err", err)
		return
	}
	ni.log.Debug("nearnet: ICE: moved to the path before the drop time", "peer", short(s))
}
