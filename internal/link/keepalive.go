package link

import (
	"errors"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

// ErrKeepalive is why a link is inviable while its pings go unanswered.
var ErrKeepalive = errors.New("nearnet: keepalive pings unanswered")

// keepaliveTick runs every KeepAliveInterval: after KeepAliveIdle without
// a frame from the peer it pings, and after KeepAliveCount unanswered
// pings the link is inviable (Handler.KeepaliveChanged) until a frame
// arrives. Dropping a dead transport is left to the transport (TCP
// keepalives and TCP_USER_TIMEOUT, QUIC's idle timeout), which tells a
// dead path from a peer that merely stopped reading.
func (l *Link) keepaliveTick() {
	select {
	case <-l.dead:
		return
	default:
	}
	now := time.Now()
	if f := l.rframes.Load(); f != l.kaFrames || l.kaSilent.IsZero() || l.noRoom.Load() {
		// (Waiting for room in the memory budget, the link reads nothing:
		// the silence is ours.)
		l.kaFrames, l.kaSilent, l.kaPings = f, now, 0
		if l.kaInviable {
			l.kaInviable = false
			l.h.KeepaliveChanged(false, nil)
		}
	} else if now.Sub(l.kaSilent) >= l.cfg.KeepAliveIdle {
		if l.kaPings >= l.cfg.KeepAliveCount && !l.kaInviable {
			l.kaInviable = true
			l.h.KeepaliveChanged(true, ErrKeepalive)
		}
		l.Enqueue(wire.OpPing, 0, nil)
		l.kaPings++
	}
	l.ka.Reset(l.cfg.KeepAliveInterval)
}
