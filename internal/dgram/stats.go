package dgram

import "sync/atomic"

// Stats are a flow's counters since it was created.
type Stats struct {
	Sent          uint64 // datagrams handed to the OS
	SentBytes     uint64 // their payload bytes
	Received      uint64 // datagrams delivered to Receive's queue
	ReceivedBytes uint64 // their payload bytes
	Dropped       Drops
}

// Drops counts datagrams of one flow that were not sent or not delivered,
// by reason. None of them is ever delivered or sent in part.
type Drops struct {
	// Sending side.
	TooLarge   uint64 // Send refused a payload over MaxSize (or the OS did: EMSGSIZE)
	SendBuffer uint64 // the socket's send buffer was full; Send does not wait for room
	SendError  uint64 // the OS refused the datagram for another reason (no route, ...)

	// Receiving side.
	Auth      uint64 // failed authentication: tampered, wrong key, or a plaintext datagram on a secure flow (or the reverse)
	Replay    uint64 // a packet number already accepted
	TooOld    uint64 // a packet number too far below the highest accepted to tell (older than the replay window)
	Truncated uint64 // shorter than header and tag
	Address   uint64 // insecure flow only: from another address than the peer's
	QueueFull uint64 // the flow's receive queue, or the Mux's byte budget, was full: the receiver is slow
}

// MuxStats are a Mux's counters for datagrams that reached no flow.
type MuxStats struct {
	Received uint64 // datagrams read from the socket, for any flow
	Dropped  MuxDrops
}

// MuxDrops counts datagrams the Mux dropped before finding their flow.
type MuxDrops struct {
	Malformed      uint64 // shorter than a header, or an unknown kind
	Truncated      uint64 // larger than the read buffer (cut by the OS)
	UnknownSession uint64 // no open flow has the session ID: never had, closed or expired
}

type flowCounters struct {
	sent, sentBytes, received, receivedBytes            atomic.Uint64
	tooLarge, sendBuffer, sendError                     atomic.Uint64
	auth, replay, tooOld, truncated, address, queueFull atomic.Uint64
}

func (c *flowCounters) snapshot() Stats {
	return Stats{
		Sent:          c.sent.Load(),
		SentBytes:     c.sentBytes.Load(),
		Received:      c.received.Load(),
		ReceivedBytes: c.receivedBytes.Load(),
		Dropped: Drops{
			TooLarge:   c.tooLarge.Load(),
			SendBuffer: c.sendBuffer.Load(),
			SendError:  c.sendError.Load(),
			Auth:       c.auth.Load(),
			Replay:     c.replay.Load(),
			TooOld:     c.tooOld.Load(),
			Truncated:  c.truncated.Load(),
			Address:    c.address.Load(),
			QueueFull:  c.queueFull.Load(),
		},
	}
}

type muxCounters struct {
	received, malformed, truncated, unknownSession atomic.Uint64
}

func (c *muxCounters) snapshot() MuxStats {
	return MuxStats{
		Received: c.received.Load(),
		Dropped: MuxDrops{
			Malformed:      c.malformed.Load(),
			Truncated:      c.truncated.Load(),
			UnknownSession: c.unknownSession.Load(),
		},
	}
}

// ByReason returns the nonzero counts by reason, named as the API's
// DatagramStats.Dropped names them; never nil.
func (d Drops) ByReason() map[string]uint64 {
	m := map[string]uint64{}
	for k, v := range map[string]uint64{
		"too_large": d.TooLarge, "send_buffer": d.SendBuffer, "send_error": d.SendError,
		"auth": d.Auth, "replay": d.Replay, "too_old": d.TooOld,
		"truncated": d.Truncated, "address": d.Address, "queue_full": d.QueueFull,
	} {
		if v > 0 {
			m[k] = v
		}
	}
	return m
}
