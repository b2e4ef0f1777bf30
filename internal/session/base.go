package session

import (
	"fmt"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

// CheckBase checks base message seq on a link, which numbers the data
// messages of a link that takes over from another (PROTOCOL.md sections 8
// and 11). On a resumed link (resumed) it carries exactly the count our
// hello announced. Otherwise (a duplicate swap) it may not rewind below
// delivered (what follows would be dropped as duplicates). It may skip
// ahead while the link it takes over from still delivers the messages in
// between; that link may even still be in its handshake. So a gap with no
// other link (alone) is reported, for the caller to give a link time to
// come and fill it (WatchGap).
func CheckBase(seq uint64, resumed bool, announced, delivered uint64, alone bool) (gap bool, err error) {
	switch {
	case resumed:
		if seq != announced {
			return false, &wire.ProtocolError{What: fmt.Sprintf("base %d on a resumed link whose hello announced %d messages received", seq, announced)}
		}
	case seq < delivered:
		return false, &wire.ProtocolError{What: fmt.Sprintf("base %d rewinds below the %d messages delivered", seq, delivered)}
	case seq > delivered && alone:
		return true, nil
	}
	return false, nil
}

// WatchGap gives the gap a base message seq left (CheckBase) time d to be
// filled. Then open, which takes the owner's lock, says whether the gap is
// still there with no other link and how many messages were delivered; if
// so, fail gets the protocol error: the gap would hold back every later
// message for good.
func WatchGap(clock Clock, d time.Duration, seq uint64, open func() (bool, uint64), fail func(*wire.ProtocolError)) {
	clock.AfterFunc(d, func() {
		if still, delivered := open(); still {
			fail(&wire.ProtocolError{What: fmt.Sprintf(
				"base %d skipped messages that no other link delivered (%d delivered)", seq, delivered)})
		}
	})
}
