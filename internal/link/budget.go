package link

import (
	"errors"

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

// ErrNoBudget comes with EnqueueData's channel when the budget, not the
// send buffer, refused the message.
var ErrNoBudget = errors.New("nearnet: the memory budget has no room for the message now")

// SetAccounts puts the link's reading on account rx and its sending on
// account tx (nil: no bound); stalled, if not nil, is told when the reader
// begins and ends waiting for the budget. Call it before Start.
func (l *Link) SetAccounts(rx, tx *budget.Account, stalled func(bool)) {
	l.rm.Init(rx)
	l.sm.Init(tx)
	l.stalled = stalled

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
	if l.stalled != nil {
		l.stalled(true)
		defer l.stalled(false)
	}
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
	n += len(l.buf) - l.bufCharge // buf may be counted already (a spare's capacity)
	if n <= 0 || l.sm.Ensure(n) {
		return nil
	}
	ch := l.sm.Account().Budget().Wait()
	if l.sm.Ensure(n) { // a release came between
		return nil
	}
	return ch
}

// chargeLocked counts the frames just added to buf, beyond what sm
// counts for it already.
func (l *Link) chargeLocked() {
	if d := len(l.buf) - l.bufCharge; d > 0 {
		l.sm.Add(d)
		l.bufCharge += d
	}
	l.noteYieldLocked()
}

// takeBufLocked hands buf, and what sm counts for it, to a writer, and
// makes the spare the new buf. l.mu is held.
func (l *Link) takeBufLocked() (b []byte, charge int) {
	b, charge = l.buf, l.bufCharge
	l.buf, l.spare = l.spare[:0], nil
	l.bufCharge, l.spareCharge = l.spareCharge, 0
	l.noteYieldLocked()
	return b, charge
}

// wroteLocked settles sm after b, counted as charge, was written, and
// keeps b as the spare if keep. With a budget sm then counts the spare's
// capacity, which it holds whatever it carries: a writer blocked on a
// stalled peer holds its buffer and the spare, and a crowd of such links
// must stay inside the budget. Refused, the spare is dropped. l.mu is
// held.
func (l *Link) wroteLocked(b []byte, charge int, keep bool) {
	defer l.noteYieldLocked()
	if !keep || l.spare != nil {
		l.sm.Sub(charge)
		return
	}
	if l.sm.Account() != nil {
		switch d := cap(b) - charge; {
		case d < 0:
			l.sm.Sub(-d)
		case d > 0 && !l.sm.Ensure(d):
			l.sm.Sub(charge)
			return
		case d > 0:
			l.sm.Add(d)
		}
		l.spareCharge = cap(b)
	}
	l.spare = b[:0]
}

// DropSpare gives back the spare, and buf's capacity while it is empty,
// with what sm counts for them: the budget squeezes them (a cache must not
// keep what must be written waiting). It reports whether there was anything to give.
func (l *Link) DropSpare() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	gave := false
	if l.spareCharge > 0 {
		l.sm.Sub(l.spareCharge)
		l.spare, l.spareCharge, gave = nil, 0, true
	}
	if len(l.buf) == 0 && l.bufCharge > 0 {
		l.sm.Sub(l.bufCharge)
		l.buf, l.bufCharge, gave = nil, 0, true
	}
	l.noteYieldLocked()
	return gave
}

// noteYieldLocked tells the account what DropSpare would give back now.
// l.mu is held.
func (l *Link) noteYieldLocked() {
	v := l.spareCharge
	if len(l.buf) == 0 {
		v += l.bufCharge
	}
	if l.sm.Account() != nil && !l.ended {
		l.sm.Account().AddYieldable(int64(v - l.toldYield))
		l.toldYield = v
	}
}
