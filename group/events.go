package group

import (
	"errors"
	"strconv"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

// Member is a member of the group as the group knows it: from its own
// signed record, which reaches every member (directly or forwarded).
type Member struct {
	ID          nearnet.PeerID
	Name        string               // its node's name
	Fingerprint security.Fingerprint // of its identity key, which signs its messages
	Addrs       []string             // the host:port addresses it listens on
}

// Message is a message received from the group.
type Message struct {
	From    nearnet.PeerID   // the sender, as its signature proves
	Seq     uint64           // the sender's sequence number: 1, 2, ... per run of the sender
	To      []nearnet.PeerID // the members it was sent to; empty: every member
	Payload []byte
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	Joined EventKind = iota + 1 // a member joined (or came back after it had left)
	Left                        // a member left (Err nil), or was lost (Err says how)
	Slow                        // a neighbour was dropped because it lagged (Err says how far)
	Forged                      // a neighbour forwarded a frame whose signature does not match the sender it names; Via is the neighbour, Member the claimed sender
	Gap                         // messages of Member were lost to this member: it was more than Config.Retain behind
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Left:
		return "left"
	case Slow:
		return "slow"
	case Forged:
		return "forged"
	case Gap:
		return "gap"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change in the group as this member sees it.
type Event struct {
	Kind   EventKind
	Member Member         // the member concerned
	Via    nearnet.PeerID // the neighbour concerned (Slow, Forged); zero otherwise
	Err    error
}

var errWrongPeer = errors.New("group: another peer answers at the member's address")
