package group

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/wire"
)

// Defaults of Config's fields.
const (
	DefaultMeshLimit     = 16
	DefaultDegree        = 4
	DefaultMaxLag        = 4096
	DefaultLagTimeout    = 10 * time.Second
	DefaultReceiveBuffer = 1024
	DefaultRetain        = 4096
	DefaultSyncInterval  = time.Second
)

// Config configures a group member. The zero value of each field but Name
// is useful; Join copies the Config and never changes the caller's.
type Config struct {
	// Name is the group's name: 1 to 63 bytes of UTF-8. Nodes advertise it
	// (TXT key "grp") and send it in their hello; a node of another group
	// is neither dialed nor admitted.
	Name string

	// Node configures the member's node (security mode, key, transports,
	// interfaces, ResumeWindow...). If nil, nearnet's defaults, which need
	// a security mode: set one. Join adds the group's TXT entry and hello
	// metadata and wraps Admit (the application's Admit, if any, is asked
	// after the group's check); TXT key "grp" and metadata key
	// "nearnet.group" are the group's.
	Node *nearnet.Config

	// Seeds are "host:port" addresses of members to join through, for
	// networks without multicast. If empty, none: members are found by
	// DNS-SD alone.
	Seeds []string

	// DisableBrowse turns DNS-SD browsing off (members are then found
	// through Seeds and through the members met). If false, the node
	// browses for members of the group.
	DisableBrowse bool

	// MeshLimit is the largest group run as a full mesh. Beyond it each
	// member dials Degree neighbours (PROTOCOL.md, "Groups"). If zero,
	// DefaultMeshLimit (16); 2 to 4096.
	MeshLimit int

	// Degree is how many neighbours a member dials beyond MeshLimit: its
	// successor on the ring of peer IDs and Degree-1 chords. Each member
	// also keeps the connections of the members that chose it. If zero,
	// DefaultDegree (4); 2 to 64.
	Degree int

	// MaxLag bounds the group messages queued for one neighbour. Send
	// blocks while a neighbour holds more than half of it; a neighbour
	// that reaches MaxLag, or whose oldest queued message has waited
	// LagTimeout, is dropped ([Slow] event) and its queue freed. If zero,
	// DefaultMaxLag (4096); at least 16.
	MaxLag int

	// LagTimeout is how long a message may wait in a neighbour's queue
	// before the neighbour is dropped as too slow. If zero,
	// DefaultLagTimeout (10 s).
	LagTimeout time.Duration

	// ReceiveBuffer bounds the messages received and not yet taken by
	// Receive; when it is full the member stops reading from its
	// neighbours (which then see it lag). If zero, DefaultReceiveBuffer
	// (1024); at least 1.
	ReceiveBuffer int

	// Retain is how many recent messages of each sender a member keeps to
	// give to a neighbour that missed them (after a link was cut, or when
	// neighbours change), and how many messages of one sender it holds
	// back behind a missing one: a member with more than Retain waiting
	// gives the missing ones up and reports a [Gap] event. If zero,
	// DefaultRetain (4096); at least 16.
	Retain int

	// SyncInterval is how often a member tells its neighbours how far it
	// has got with each sender, so that they send what it misses, and
	// re-checks its connections. If zero, DefaultSyncInterval (1 s);
	// 10 ms to 1 minute.
	SyncInterval time.Duration
}

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("group: invalid Config.%s %v: %s", e.Field, e.Value, e.Reason)
}

func (c *Config) clone() (*Config, error) {
	if c == nil {
		return nil, &ConfigError{Field: "Name", Value: `""`, Reason: "a group needs a name"}
	}
	d := *c
	d.Seeds = append([]string(nil), c.Seeds...)
	bad := func(field string, v any, reason string) error { return &ConfigError{field, v, reason} }
	switch {
	case d.Name == "" || len(d.Name) > wire.MaxGroupName || !utf8.ValidString(d.Name):
		return nil, bad("Name", fmt.Sprintf("%q", d.Name), "1 to 63 bytes of UTF-8")
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&d.MeshLimit, DefaultMeshLimit)
	def(&d.Degree, DefaultDegree)
	def(&d.MaxLag, DefaultMaxLag)
	def(&d.ReceiveBuffer, DefaultReceiveBuffer)
	def(&d.Retain, DefaultRetain)
	if d.LagTimeout == 0 {
		d.LagTimeout = DefaultLagTimeout
	}
	if d.SyncInterval == 0 {
		d.SyncInterval = DefaultSyncInterval
	}
	switch {
	case d.MeshLimit < 2 || d.MeshLimit > 4096:
		return nil, bad("MeshLimit", d.MeshLimit, "2 to 4096")
	case d.Degree < 2 || d.Degree > 64:
		return nil, bad("Degree", d.Degree, "2 to 64")
	case d.MaxLag < 16:
		return nil, bad("MaxLag", d.MaxLag, "at least 16")
	case d.LagTimeout < 0:
		return nil, bad("LagTimeout", d.LagTimeout, "must not be negative")
	case d.ReceiveBuffer < 1:
		return nil, bad("ReceiveBuffer", d.ReceiveBuffer, "at least 1")
	case d.Retain < 16:
		return nil, bad("Retain", d.Retain, "at least 16")
	case d.SyncInterval < 10*time.Millisecond || d.SyncInterval > time.Minute:
		return nil, bad("SyncInterval", d.SyncInterval, "10 ms to 1 minute")
	}
	if d.Node != nil {
		if _, ok := d.Node.TXT[nearnet.TXTGroup]; ok {
			return nil, bad("Node.TXT", nearnet.TXTGroup, "the group's own TXT key")
		}
		if _, ok := d.Node.Metadata[metaGroup]; ok {
			return nil, bad("Node.Metadata", metaGroup, "the group's own metadata key")
		}
	}
	return &d, nil
}
