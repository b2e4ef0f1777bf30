package session

// Recv is the receive side of a session: the data messages of every link
// of one Conn, queued in the order of their sequence numbers, which run on
// across links (a base message continues the numbering on a link that
// takes over, PROTOCOL.md sections 8 and 11). A message numbered below
// Delivered came through another link already and is dropped; one numbered
// above it waits until the messages before it arrived. The queue is
// bounded by bytes, with PerMessageOverhead per message, except that one
// message always fits an empty queue.
//
// A Recv is not safe for concurrent use: its owner's lock (the
// Session's) guards it, and the channels it hands out are closed under that
// lock. Senders on links wait on WriterWait, readers of the queue on
// ReaderWait.
type Recv struct {
	q         [][]byte      // messages not yet taken
	qh        int           // head of q
	qbytes    int           // bytes in q, with per-message overhead
	delivered uint64        // sequence number of the next message to queue
	rwait     chan struct{} // closed when q gains a message or err is set
	dwait     chan struct{} // closed when q drains to half or delivered advances
	err       error         // reported once q is empty
}

// OfferResult is what Offer did with a message.
type OfferResult int

const (
	Queued    OfferResult = iota // the next message: queued
	Duplicate                    // delivered already, through another link
	Blocked                      // the queue is full or an earlier message is due: wait on WriterWait and offer again
)

// Delivered is the sequence number of the next message to queue: the count
// of messages received in order.
func (r *Recv) Delivered() uint64 { return r.delivered }

// Offer queues message m numbered seq if it is the next one and fits under
// limit bytes. others says whether another link may be waiting to offer
// the message after it (it is then woken).
func (r *Recv) Offer(seq uint64, m []byte, limit int, others bool) OfferResult {
	if seq < r.delivered {
		return Duplicate
	}
	if seq == r.delivered && (r.qbytes == 0 || r.qbytes+len(m)+PerMessageOverhead <= limit) {
		r.q = append(r.q, m)
		r.qbytes += len(m) + PerMessageOverhead
		r.delivered++
		if r.rwait != nil {
			close(r.rwait)
			r.rwait = nil
		}
		if others {
			r.WakeWriters() // another link may be waiting for this sequence number
		}
		return Queued
	}
	return Blocked
}

// WriterWait returns the channel closed when an Offer that was Blocked may
// succeed.
func (r *Recv) WriterWait() <-chan struct{} {
	if r.dwait == nil {
		r.dwait = make(chan struct{})
	}
	return r.dwait
}

// WakeWriters wakes every link waiting to offer, so each looks again (a
// link ended, and the one waiting may be the only one left).
func (r *Recv) WakeWriters() {
	if r.dwait != nil {
		close(r.dwait)
		r.dwait = nil
	}
}

// Take returns the next queued message, if any; when the queue drains to
// half of limit, waiting links are woken.
func (r *Recv) Take(limit int) ([]byte, bool) {
	if r.qh == len(r.q) {
		return nil, false
	}
	m := r.q[r.qh]
	r.q[r.qh] = nil
	r.qh++
	if r.qh == len(r.q) {
		r.q, r.qh = r.q[:0], 0
	}
	r.qbytes -= len(m) + PerMessageOverhead
	if r.dwait != nil && r.qbytes <= limit/2 {
		close(r.dwait)
		r.dwait = nil
	}
	return m, true
}

// HasQueued reports whether a message waits in the queue.
func (r *Recv) HasQueued() bool { return r.qh < len(r.q) }

// TakeDirect accounts for m, the next message (numbered Delivered), which a
// reader read from a link itself. It never blocks. It reports whether the
// reader keeps it (the queue was empty); otherwise m is queued behind the
// others, over the limit by one message at most.
func (r *Recv) TakeDirect(m []byte) (mine bool) {
	r.delivered++
	r.WakeWriters()
	if r.qh == len(r.q) {
		return true
	}
	r.q = append(r.q, m)
	r.qbytes += len(m) + PerMessageOverhead
	return false
}

// Err is the error readers get once the queue is empty; nil while the
// session goes on.
func (r *Recv) Err() error { return r.err }

// SetErr sets what readers get once the queue is empty and wakes them.
func (r *Recv) SetErr(err error) {
	r.err = err
	r.wakeReaders()
}

// ReaderWaiting reports whether a reader waits on ReaderWait.
func (r *Recv) ReaderWaiting() bool { return r.rwait != nil }

// ReaderWait reports whether the queue has a message or Err is set, or else
// returns the channel closed when it has.
func (r *Recv) ReaderWait() (<-chan struct{}, bool) {
	if r.qh < len(r.q) || r.err != nil {
		return nil, true
	}
	if r.rwait == nil {
		r.rwait = make(chan struct{})
	}
	return r.rwait, false
}

// End wakes every waiter for good: the session ended.
func (r *Recv) End() {
	r.wakeReaders()
	r.WakeWriters()
}

func (r *Recv) wakeReaders() {
	if r.rwait != nil {
		close(r.rwait)
		r.rwait = nil
	}
}
