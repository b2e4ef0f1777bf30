package link

import (
	"github.com/nearnet/nearnet/internal/budget"
	"github.com/nearnet/nearnet/internal/wire"
)

// The node's memory budget (internal/budget) on a link.
//
// Reading: the wire.Reader asks rm for room for each data frame's payload
// after its header and before allocating it. When the budget refuses, the
// reader stops reading (the transport's flow control pushes back on the
// peer) and waits for a release, holding nothing of the message. A data
// message handed to the Handler carries its grant, len(m)+1 bytes (the
// kind byte too): the Handler takes it over with [Link.MoveRead]. Other
// messages give theirs back as soon as they are read.
//
// Sending: sm counts the data frames in the send buffer from EnqueueData
// until the writer (or a write-through) has written them. EnqueueData asks
// it for room first and, refused, returns the budget's release channel to
// wait on, as it does when the buffer is full.

// SetAccounts puts the link's reading on account rx and its sending on
// account tx (nil: no bound). Call it before Start.
func (l *Link) SetAccounts(rx, tx *budget.Account) {
	l.rm.Init(rx)
	l.sm.Init(tx)
	if rx != nil {
		l.rd.SetReserve(l.reserveRead)
	}
}

// smallControl bounds the messages other than data (acks, base messages,
// stream requests and refusals) that are read whatever the budget says:
// the peer's ack may be what lets this node's SendMessage, and so its
// application, go on and release memory; refusing it could leave every
// connection waiting for the others. Larger ones (unknown kinds the peer
// is free to send) are asked for like data.
const smallControl = 4 << 10

// reserveRead is the wire.Reader's question for a frame of n bytes of a
// message of the given kind; the caller holds rmu.
func (l *Link) reserveRead(n int, kind byte) bool {
	if wire.Kind(kind) != wire.KindData && n <= smallControl {
		l.rm.Add(n)
		return true
	}
	if !l.rm.Ensure(n) {
		return false
	}
	l.rm.Add(n)
	return true
}

// MoveRead hands the grant of data message m, which the link just gave the
// Handler (Deliver or TakeDirect, which call it under their lock, while
// the link's reader holds rmu), to the owner's meter to.
func (l *Link) MoveRead(m []byte, to *budget.Meter) { l.rm.MoveTo(to, len(m)+1) }

// waitRoom waits, after wire.ErrNoRoom, until the budget releases
// something or the link ends. The first refusal only registers for the
// release and returns, so that a release between the refusal and the wait
// is not missed: the caller asks again at once. It reports false if the
// link failed. The caller holds rmu.
func (l *Link) waitRoom() bool {
	select {
	case <-l.dead:
		return false
	default:
	}
	if l.roomWait == nil {
		l.roomWait = l.rm.Account().Budget().Wait()
		return true
	}
	l.noRoom.Store(true)
	defer l.noRoom.Store(false)
	select {
	case <-l.roomWait:
		l.roomWait = nil
		return true
	case <-l.dead:
		return false
	}
}

// ensureSendLocked makes room in sm for a frame of up to n bytes, or
// returns the channel to wait on. l.mu is held.
func (l *Link) ensureSendLocked(n int) <-chan struct{} {
	if l.sm.Ensure(n) {
		return nil
	}
	ch := l.sm.Account().Budget().Wait()
	if l.sm.Ensure(n) { // a release came between
		return nil
	}
	return ch
}

// chargeLocked counts n bytes of data frames just added to buf.
func (l *Link) chargeLocked(n int) {
	l.sm.Add(n)
	l.bufCharge += n
}
