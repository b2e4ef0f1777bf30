package icepath

import (
	"time"

	"github.com/nearnet/nearnet/internal/transport/ice"
)

// A path standing by can die while the session runs on the LAN: a TURN
// server restarted and lost the allocation under it, a NAT forgot its
// mapping. ICE does not come back from that, so the LAN link's dialer
// runs a new exchange over the session, and again, with backoff, until a
// path stands by once more. While the session has no LAN link (it runs on
// the dead path's QUIC connection, or waits to resume) there is nothing
// to exchange over: the loop waits for one.

// standbyRetryMax bounds the wait between two exchanges that found no
// path.
const standbyRetryMax = 30 * time.Second

// watch waits until p, ic's path, dies, then exchanges again until a new
// path stands by (which gets a watch of its own) or the session ends.
func (ni *Node) watch(ic *iceConn, p *ice.Path) {
	s := ic.s
	select {
	case <-p.Dead():
	case <-s.Ended():
		return
	case <-ni.ctx.Done():
		return
	}
	for i := 0; ; i++ {
		if !ni.pause(s, min(time.Second<<min(i, 5), standbyRetryMax)) {
			return
		}
		ic.mu.Lock()
		cur := ic.path
		ic.mu.Unlock()
		if cur != nil && cur != p {
			return // a new exchange found a path
		}
		l := s.SendPath()
		if l == nil {
			continue // waiting to resume: no link to exchange over
		}
		ni.mu.Lock()
		overICE := ni.paths[l.T] != nil
		ni.mu.Unlock()
		if overICE {
			continue // on the dead path's connection, or through the mailboxes (whose link offers anew)
		}
		ni.log.Debug("nearnet: ICE: the path standing by died; exchanging again", "peer", short(s))
		ni.offer(ic)
	}
}
