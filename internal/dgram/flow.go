package dgram

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Flow is one best-effort datagram channel between two peers, on a [Mux]
// at each end. Datagrams may be lost, duplicated by the network (a secure
// flow delivers each at most once) or reordered; each one that is delivered
// is whole, as sent.
//
// Where a flow sends: to FlowConfig.RemoteAddr if it was given. Otherwise it
// learns the address from what it receives: a secure flow sends to the source
// of the authenticated datagram with the highest packet number so far (so it
// follows a peer whose address changes, as WireGuard does); an insecure flow
// takes the source of its first datagram and then drops datagrams from any
// other address (counted in [Drops.Address]). A secure flow accepts
// authenticated datagrams from any source, since a peer with several
// addresses may answer from another one than the one dialed; an insecure
// flow with a given address accepts only datagrams from it.
//
// A flow ends when [Flow.Close] is called, when its Mux closes (both
// [ErrClosed]), or when it was idle for the Mux's idle timeout
// ([ErrExpired]). Its session ID is free again at once.
//
// A Flow is safe for concurrent use by multiple goroutines.
type Flow struct {
	mux            *Mux
	local, remote  SessionID
	sealer, opener cipher.AEAD // nil for an insecure flow
	learn          bool        // no RemoteAddr given: follow the peer's datagrams

	peer       atomic.Pointer[peer] // nil until known
	nextPN     atomic.Uint64        // packet number of the next datagram sent
	lastActive atomic.Uint64        // the Mux epoch of the last datagram sent or received
	closed     atomic.Bool          // set when err is
	stats      flowCounters

	// The Mux's reader goroutine alone uses these.
	window  replayWindow
	highest uint64 // highest packet number accepted
	heard   bool   // a datagram was accepted

	mu      sync.Mutex // guards the fields below
	queue   [][]byte   // ring of received payloads; allocated on first use
	head, n int        // first element and count in queue
	qbytes  int        // payload bytes in queue
	err     error      // why the flow ended; nil while open

	notify chan struct{} // capacity 1: a datagram was queued
	done   chan struct{} // closed when the flow ends
}

// LocalSession returns the session ID the flow receives with.
func (f *Flow) LocalSession() SessionID { return f.local }

// RemoteSession returns the session ID the flow sends to.
func (f *Flow) RemoteSession() SessionID { return f.remote }

// Secure reports whether the flow's datagrams are sealed (it has keys).
func (f *Flow) Secure() bool { return f.sealer != nil }

// RemoteAddr returns where the flow sends now; the zero AddrPort while it is
// not known yet.
func (f *Flow) RemoteAddr() netip.AddrPort {
	if p := f.peer.Load(); p != nil {
		return p.addr
	}
	return netip.AddrPort{}
}

// Stats returns the flow's counters.
func (f *Flow) Stats() Stats { return f.stats.snapshot() }

// Done returns a channel that is closed when the flow ends; [Flow.Err] then
// says why.
func (f *Flow) Done() <-chan struct{} { return f.done }

// Err returns nil while the flow is open, then [ErrClosed] or [ErrExpired].
func (f *Flow) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// minMTU is assumed when the path's MTU cannot be known: the IPv6 minimum
// link MTU (RFC 8200), which every LAN nearnet runs on meets in practice.
const minMTU = 1280

// maxPayload is the largest payload that fits a path of the given MTU,
// after the IP header (20 bytes for IPv4 without options, 40 for IPv6), the
// UDP header (8 bytes) and the flow's own overhead.
func maxPayload(mtu int, v6, secure bool) int {
	ip, limit := 20, 65535 // IPv4: the total length field
	if v6 {
		ip, limit = 40, 40+65535 // IPv6: the payload length field
	}
	if mtu > limit {
		mtu = limit
	}
	n := mtu - ip - 8 - PlainOverhead
	if secure {
		n = mtu - ip - 8 - SealedOverhead
	}
	return max(n, 0)
}

// MaxSize returns the largest payload [Flow.Send] takes: the MTU of the path
// to the peer (on Linux the kernel's path MTU for the route, which is the
// outgoing interface's MTU unless path MTU discovery learned a smaller one;
// elsewhere the MTU of the interface that holds the local address of the
// route), less the IP header (20 or 40 bytes), the UDP header (8) and the
// datagram header and tag (33 bytes; 17 on an insecure flow). The MTU is
// looked up again when the last lookup is more than a second old. Before the
// peer's address is known it assumes an MTU of 1280 bytes.
func (f *Flow) MaxSize() int {
	p := f.peer.Load()
	if p == nil {
		return maxPayload(minMTU, f.mux.v6, f.Secure())
	}
	if time.Now().UnixNano()-p.mtuAt.Load() > int64(mtuTTL) {
		return f.refreshMaxSize(p)
	}
	return int(p.maxSize.Load())
}

// maxSizeFor returns the cached maximum towards p, looking it up once.
func (f *Flow) maxSizeFor(p *peer) int {
	if n := p.maxSize.Load(); n != 0 {
		return int(n)
	}
	return f.refreshMaxSize(p)
}

func (f *Flow) refreshMaxSize(p *peer) int {
	mtu, err := f.mux.mtus.get(p.addr)
	if err != nil {
		f.mux.cfg.Logger.Debug("nearnet: datagram path MTU unknown; assuming the minimum", "peer", p.addr, "mtu", minMTU, "err", err)
		mtu = minMTU
	}
	n := maxPayload(mtu, f.mux.v6, f.Secure())
	p.maxSize.Store(int64(n))
	p.mtuAt.Store(time.Now().UnixNano())
	return n
}

// Send sends p as one datagram. It never waits: it returns once the OS has
// the datagram, or has refused it. A datagram the OS has no buffer room for
// is dropped (counted in [Drops.SendBuffer]) and Send returns nil, as for a
// datagram lost on the way: best effort. Send does not keep p.
//
// Errors: a [*TooLargeError] (matching [ErrTooLarge]) for a payload over
// [Flow.MaxSize], including when the OS learned a smaller path MTU since;
// [ErrNoPeerAddress] before the peer's address is known; [ErrClosed] or
// [ErrExpired] once the flow ended; otherwise the OS's error (no route to the
// peer, say), counted in [Drops.SendError].
func (f *Flow) Send(p []byte) error {
	if f.closed.Load() {
		return f.Err()
	}
	pr := f.peer.Load()
	if pr == nil {
		return ErrNoPeerAddress
	}
	if limit := f.maxSizeFor(pr); len(p) > limit {
		// The MTU may have grown since the last lookup.
		if time.Now().UnixNano()-pr.mtuAt.Load() <= int64(mtuTTL) {
			f.stats.tooLarge.Add(1)
			return &TooLargeError{Size: len(p), Max: limit}
		}
		if limit = f.refreshMaxSize(pr); len(p) > limit {
			f.stats.tooLarge.Add(1)
			return &TooLargeError{Size: len(p), Max: limit}
		}
	}
	m := f.mux
	buf := m.getBuf()
	pn := f.nextPN.Add(1) - 1
	var b []byte
	if f.sealer != nil {
		b = seal(f.sealer, &buf.nonce, buf.b, f.remote, pn, p)
	} else {
		b = appendPlain(buf.b, f.remote, pn, p)
	}
	err := m.sock.write(b, pr)
	m.putBuf(buf)
	switch {
	case err == nil:
		f.stats.sent.Add(1)
		f.stats.sentBytes.Add(uint64(len(p)))
		f.touch()
		return nil
	case err == errWouldBlock:
		f.stats.sendBuffer.Add(1)
		return nil
	case err == errMsgSize:
		// The kernel's path MTU is below what we assumed (an ICMP
		// "fragmentation needed" lowered it, or the link's MTU changed).
		m.mtus.forget(pr.addr.Addr())
		limit := min(f.refreshMaxSize(pr), len(p)-1)
		f.stats.tooLarge.Add(1)
		return &TooLargeError{Size: len(p), Max: limit}
	case errors.Is(err, net.ErrClosed):
		if err := f.Err(); err != nil {
			return err
		}
		return ErrClosed
	}
	f.stats.sendError.Add(1)
	return fmt.Errorf("nearnet: send datagram to %s: %w", pr.addr, err)
}

// Receive returns the next datagram's payload, waiting for one until ctx is
// done (then it returns ctx.Err(); cancelling loses nothing) or the flow
// ends ([ErrClosed] or [ErrExpired]; datagrams still queued are dropped).
// The caller owns the returned slice.
func (f *Flow) Receive(ctx context.Context) ([]byte, error) {
	for {
		f.mu.Lock()
		if f.n > 0 {
			p := f.queue[f.head]
			f.queue[f.head] = nil
			f.head = (f.head + 1) % len(f.queue)
			f.n--
			f.qbytes -= len(p)
			more := f.n > 0
			f.mu.Unlock()
			f.mux.queued.Add(-int64(len(p)))
			if more {
				f.signal() // for another waiting Receive
			}
			return p, nil
		}
		if f.err != nil {
			err := f.err
			f.mu.Unlock()
			return nil, err
		}
		f.mu.Unlock()
		select {
		case <-f.notify:
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (f *Flow) signal() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// touch notes activity for idle expiry.
func (f *Flow) touch() {
	if e := f.mux.epoch.Load(); f.lastActive.Load() != e {
		f.lastActive.Store(e)
	}
}

// Close ends the flow: its session ID is free at once, datagrams for it are
// dropped from then on (counted by the Mux as unknown session), and
// blocked Receive calls return [ErrClosed]. Closing a closed flow does
// nothing.
func (f *Flow) Close() error {
	f.closeWith(ErrClosed)
	return nil
}

func (f *Flow) closeWith(err error) {
	m := f.mux
	m.mu.Lock()
	if m.flows[f.local] == f {
		delete(m.flows, f.local)
	}
	m.mu.Unlock()
	f.finish(err)
}

// finish marks the flow ended and frees its queue. The flow is no longer in
// the Mux's map.
func (f *Flow) finish(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	f.err = err
	f.closed.Store(true)
	f.mux.queued.Add(-int64(f.qbytes))
	f.queue, f.head, f.n, f.qbytes = nil, 0, 0, 0
	close(f.done)
}

// input takes one datagram for this flow from the Mux's reader: b is the
// whole datagram (it is decrypted in place), h its parsed header.
func (f *Flow) input(h header, b []byte, from netip.AddrPort) {
	var payload []byte
	if f.opener != nil {
		if h.kind != kindSealed {
			f.stats.auth.Add(1)
			return
		}
		if len(b) < SealedOverhead {
			f.stats.truncated.Add(1)
			return
		}
		switch f.window.check(h.pn) {
		case replaySeen:
			f.stats.replay.Add(1)
			return
		case replayTooOld:
			f.stats.tooOld.Add(1)
			return
		}
		p, err := open(f.opener, &f.mux.nonce, h, b)
		if err != nil {
			f.stats.auth.Add(1)
			return
		}
		f.window.update(h.pn)
		payload = p
		if f.learn && (!f.heard || h.pn > f.highest) {
			f.follow(from)
		}
	} else {
		if h.kind != kindPlain {
			f.stats.auth.Add(1)
			return
		}
		pr := f.peer.Load()
		switch {
		case pr == nil:
			f.follow(from)
		case !sameAddr(pr.addr, from):
			f.stats.address.Add(1)
			return
		}
		payload = b[HeaderLen:]
	}
	if !f.heard || h.pn > f.highest {
		f.highest = h.pn
	}
	f.heard = true
	f.touch()
	f.deliver(payload)
}

// follow makes from the address the flow sends to.
func (f *Flow) follow(from netip.AddrPort) {
	if p := f.peer.Load(); p != nil && p.addr == from {
		return
	}
	p, err := newPeer(from)
	if err != nil {
		return
	}
	f.peer.Store(p)
}

// deliver queues a copy of payload for Receive, or drops it if the flow's
// queue or the Mux's byte budget is full.
func (f *Flow) deliver(payload []byte) {
	m := f.mux
	size := int64(len(payload))
	if m.queued.Add(size) > int64(m.cfg.QueueBytes) {
		m.queued.Add(-size)
		f.stats.queueFull.Add(1)
		return
	}
	f.mu.Lock()
	if f.err != nil {
		f.mu.Unlock()
		m.queued.Add(-size)
		return
	}
	if f.queue == nil {
		f.queue = make([][]byte, m.cfg.QueueLen)
	}
	if f.n == len(f.queue) {
		f.mu.Unlock()
		m.queued.Add(-size)
		f.stats.queueFull.Add(1)
		return
	}
	c := make([]byte, len(payload))
	copy(c, payload)
	f.queue[(f.head+f.n)%len(f.queue)] = c
	f.n++
	f.qbytes += len(payload)
	if f.n > len(f.queue)/2 {
		m.backlog = true
	}
	f.mu.Unlock()
	f.stats.received.Add(1)
	f.stats.receivedBytes.Add(uint64(len(payload)))
	f.signal()
}
