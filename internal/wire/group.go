package wire

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Group frames (PROTOCOL.md, "Groups"). Each is one data message on a Conn
// between two members of a group: a kind byte, then the body. Integers are
// big-endian; strings and byte strings carry a length prefix.

// Group frame kinds.
const (
	GroupHello   byte = 0x01 // the sender's own record and digest, first frame each way
	GroupData    byte = 0x02 // one application message of one origin
	GroupMembers byte = 0x03 // member records
	GroupDigest  byte = 0x04 // how far the sender has delivered each origin
	GroupPull    byte = 0x05 // a digest of streams the sender is stuck on: send me all you have past Next
	GroupTagged  byte = 0x06 // a data frame followed by per-member authenticators
)

// Limits of group frames.
const (
	MaxGroupName   = 63   // bytes of a group name
	MaxMemberName  = 63   // bytes of a member's name
	MaxMemberAddrs = 16   // addresses in a record
	MaxAddrLen     = 64   // bytes of one address
	MaxKeyLen      = 512  // bytes of a public key (SPKI DER)
	MaxSigLen      = 255  // bytes of a signature
	MaxDests       = 4096 // destinations of one data frame
	MaxRecords     = 4096 // records in one members frame
	MaxDigest      = 4096 // entries in one digest
	MaxTags        = 4096 // authenticators of one data frame
	TagLen         = 16   // bytes of one authenticator
)

// Member status values of a GroupRecord.
const (
	StatusAlive byte = 1
	StatusLeft  byte = 2 // the member left, signed by itself
	StatusDead  byte = 3 // a neighbour lost it, signed by that neighbour (By)
)

// GroupRecord is what the group knows of one member.
type GroupRecord struct {
	ID     [16]byte // the member's PeerID
	Epoch  uint64   // random per run of the member: a new run is a new sender stream
	Inc    uint64   // incarnation: a newer record of the same epoch has a higher Inc
	Status byte
	Head   uint64   // the last sequence number the member had sent when it signed
	Name   string   // the member's node name
	Key    []byte   // the member's identity public key, SPKI DER
	Addrs  []string // host:port addresses it listens on
	By     [16]byte // who signed: ID itself, or for StatusDead the neighbour
	Sig    []byte   // ECDSA P-256 SHA-256 signature (ASN.1) over RecordSigned
}

// GroupEntry is one origin's progress in a digest or hello.
type GroupEntry struct {
	Origin [16]byte
	Epoch  uint64
	Next   uint64 // the next sequence number the sender will deliver
}

// GroupDataFrame is one application message.
type GroupDataFrame struct {
	Origin  [16]byte
	Epoch   uint64
	Seq     uint64     // 1, 2, ... per origin and epoch
	Dests   [][16]byte // empty: every member
	Payload []byte
	Sig     []byte     // the origin's signature over DataSigned
	Tags    []GroupTag // per-member authenticators (kind 0x06); none: kind 0x02
}

// GroupTag is one member's authenticator of a data frame: GroupTagOf
// with the pair key of the origin and that member.
type GroupTag struct {
	To  [8]byte // the first 8 bytes of the member's PeerID
	Tag [TagLen]byte
}

// GroupError reports a malformed group frame.
type GroupError struct{ What string }

func (e *GroupError) Error() string { return "nearnet: bad group frame: " + e.What }

func groupErr(format string, args ...any) error {
	return &GroupError{What: fmt.Sprintf(format, args...)}
}

// Signing contexts: they keep a signature of one kind from passing for
// another, and bind it to the group's name.
const (
	recordContext = "nearnet group record v1\x00"
	dataContext   = "nearnet group data v1\x00"
)

// RecordSigned returns the bytes a record's signature covers: the context,
// the group name, and the record's encoding without its signature.
func RecordSigned(group string, r *GroupRecord) []byte {
	b := append([]byte(recordContext), byte(len(group)))
	b = append(b, group...)
	return appendRecordBody(b, r)
}

// DataSigned returns the bytes a data frame's signature covers.
func DataSigned(group string, d *GroupDataFrame) []byte {
	b := append([]byte(dataContext), byte(len(group)))
	b = append(b, group...)
	return appendDataBody(b, d)
}

func appendRecordBody(b []byte, r *GroupRecord) []byte {
	b = append(b, r.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Epoch)
	b = binary.BigEndian.AppendUint64(b, r.Inc)
	b = append(b, r.Status)
	b = binary.BigEndian.AppendUint64(b, r.Head)
	b = append(b, byte(len(r.Name)))
	b = append(b, r.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Key)))
	b = append(b, r.Key...)
	b = append(b, byte(len(r.Addrs)))
	for _, a := range r.Addrs {
		b = append(b, byte(len(a)))
		b = append(b, a...)
	}
	return append(b, r.By[:]...)
}

// AppendRecord appends r's encoding.
func AppendRecord(b []byte, r *GroupRecord) []byte {
	b = appendRecordBody(b, r)
	b = append(b, byte(len(r.Sig)))
	return append(b, r.Sig...)
}

func appendDataBody(b []byte, d *GroupDataFrame) []byte {
	b = append(b, d.Origin[:]...)
	b = binary.BigEndian.AppendUint64(b, d.Epoch)
	b = binary.BigEndian.AppendUint64(b, d.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Dests)))
	for _, id := range d.Dests {
		b = append(b, id[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.Payload)))
	return append(b, d.Payload...)
}

// AppendGroupData appends the frame of d, kind byte first: kind 0x02, or
// 0x06 with d.Tags after the signature if it has any.
func AppendGroupData(b []byte, d *GroupDataFrame) []byte {
	kind := GroupData
	if len(d.Tags) > 0 {
		kind = GroupTagged
	}
	b = append(b, kind)
	b = appendDataBody(b, d)
	b = append(b, byte(len(d.Sig)))
	b = append(b, d.Sig...)
	if kind == GroupTagged {
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.Tags)))
		for _, t := range d.Tags {
			b = append(b, t.To[:]...)
			b = append(b, t.Tag[:]...)
		}
	}
	return b
}

// Per-member authenticators (PROTOCOL.md, "Groups"): two members' pair
// key comes from static ECDH of their identity keys; a tag is an HMAC of
// the digest the origin's signature covers.
const pairContext = "nearnet group pair v1\x00"

// GroupPairKey derives the pair key of members a and b of group from
// their ECDH shared secret (the x-coordinate, 32 bytes for P-256): HKDF-
// SHA-256 with no salt and info = context, the group name as a str8, the
// lower ID, the higher ID. Either member derives the same key.
func GroupPairKey(group string, a, b [16]byte, shared []byte) [32]byte {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	info := append([]byte(pairContext), byte(len(group)))
	info = append(info, group...)
	info = append(info, a[:]...)
	info = append(info, b[:]...)
	k, err := hkdf.Key(sha256.New, shared, nil, string(info), 32)
	if err != nil { // cannot happen: 32 bytes is within HKDF's limit
		panic(err)
	}
	return [32]byte(k)
}

// GroupTagOf is the authenticator of a data frame for the member that
// shares key with its origin: the first TagLen bytes of HMAC-SHA-256
// under key of digest, the SHA-256 of DataSigned.
func GroupTagOf(key *[32]byte, digest *[32]byte) [TagLen]byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(digest[:])
	var t [TagLen]byte
	copy(t[:], m.Sum(nil))
	return t
}

// AppendGroupHello appends a hello frame: the sender's record, then its
// digest.
func AppendGroupHello(b []byte, self *GroupRecord, digest []GroupEntry) []byte {
	b = append(b, GroupHello, 1) // version 1
	b = AppendRecord(b, self)
	return appendEntries(b, digest)
}

// AppendGroupMembers appends a members frame.
func AppendGroupMembers(b []byte, rs []*GroupRecord) []byte {
	b = append(b, GroupMembers)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rs)))
	for _, r := range rs {
		b = AppendRecord(b, r)
	}
	return b
}

// AppendGroupDigest appends a digest frame.
func AppendGroupDigest(b []byte, es []GroupEntry) []byte {
	return appendEntries(append(b, GroupDigest), es)
}

// AppendGroupPull appends a pull frame.
func AppendGroupPull(b []byte, es []GroupEntry) []byte {
	return appendEntries(append(b, GroupPull), es)
}

func appendEntries(b []byte, es []GroupEntry) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(es)))
	for _, e := range es {
		b = append(b, e.Origin[:]...)
		b = binary.BigEndian.AppendUint64(b, e.Epoch)
		b = binary.BigEndian.AppendUint64(b, e.Next)
	}
	return b
}

// GroupFrame is a decoded group frame: Kind says which fields are set.
type GroupFrame struct {
	Kind    byte
	Record  *GroupRecord   // hello
	Entries []GroupEntry   // hello, digest, pull
	Records []*GroupRecord // members
	Data    *GroupDataFrame
}

// ParseGroupFrame decodes one group frame. The slices it returns alias p.
// A frame of an unknown kind at 0x80 or above is returned with only Kind
// set (receivers ignore it); anything else malformed is a *GroupError.
func ParseGroupFrame(p []byte) (*GroupFrame, error) {
	if len(p) == 0 {
		return nil, groupErr("empty frame")
	}
	r := &greader{b: p[1:]}
	f := &GroupFrame{Kind: p[0]}
	switch f.Kind {
	case GroupHello:
		if v := r.u8(); r.err == nil && v != 1 {
			return nil, groupErr("hello version %d, this member speaks 1", v)
		}
		f.Record = r.record()
		f.Entries = r.entries()
	case GroupData:
		f.Data = r.data()
	case GroupTagged:
		f.Kind = GroupData // the same frame, with authenticators
		f.Data = r.data()
		n := int(r.u16())
		if r.err != nil {
			return nil, r.err
		}
		if n == 0 || n > MaxTags {
			return nil, groupErr("%d authenticators, 1 to %d", n, MaxTags)
		}
		if n*(8+TagLen) > len(r.b) {
			return nil, groupErr("truncated authenticators")
		}
		f.Data.Tags = make([]GroupTag, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			var t GroupTag
			copy(t.To[:], r.take(8, "authenticator"))
			copy(t.Tag[:], r.take(TagLen, "authenticator"))
			f.Data.Tags = append(f.Data.Tags, t)
		}
	case GroupMembers:
		n := int(r.u16())
		if n > MaxRecords {
			return nil, groupErr("%d records, at most %d", n, MaxRecords)
		}
		for i := 0; i < n && r.err == nil; i++ {
			f.Records = append(f.Records, r.record())
		}
	case GroupDigest, GroupPull:
		f.Entries = r.entries()
	default:
		if f.Kind >= 0x80 {
			return f, nil
		}
		return nil, groupErr("unknown kind 0x%02x", f.Kind)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, groupErr("%d bytes after the frame", len(r.b))
	}
	return f, nil
}

// greader decodes from b; the first error sticks.
type greader struct {
	b   []byte
	err error
}

func (r *greader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = groupErr("truncated %s", what)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *greader) u8() byte {
	if p := r.take(1, "frame"); p != nil {
		return p[0]
	}
	return 0
}

func (r *greader) u16() uint16 {
	if p := r.take(2, "frame"); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *greader) u32() uint32 {
	if p := r.take(4, "frame"); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *greader) u64() uint64 {
	if p := r.take(8, "frame"); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *greader) id() (id [16]byte) {
	copy(id[:], r.take(16, "peer ID"))
	return id
}

func (r *greader) str(max int, what string) string {
	n := int(r.u8())
	if r.err == nil && n > max {
		r.err = groupErr("%s of %d bytes, at most %d", what, n, max)
	}
	s := string(r.take(n, what))
	if r.err == nil && !utf8.ValidString(s) {
		r.err = groupErr("%s is not UTF-8", what)
	}
	return s
}

func (r *greader) record() *GroupRecord {
	g := &GroupRecord{ID: r.id(), Epoch: r.u64(), Inc: r.u64(), Status: r.u8(), Head: r.u64()}
	if r.err == nil && (g.Status < StatusAlive || g.Status > StatusDead) {
		r.err = groupErr("member status %d", g.Status)
	}
	g.Name = r.str(MaxMemberName, "member name")
	kn := int(r.u16())
	if r.err == nil && kn > MaxKeyLen {
		r.err = groupErr("key of %d bytes, at most %d", kn, MaxKeyLen)
	}
	g.Key = r.take(kn, "key")
	na := int(r.u8())
	if r.err == nil && na > MaxMemberAddrs {
		r.err = groupErr("%d addresses, at most %d", na, MaxMemberAddrs)
	}
	for i := 0; i < na && r.err == nil; i++ {
		g.Addrs = append(g.Addrs, r.str(MaxAddrLen, "address"))
	}
	g.By = r.id()
	g.Sig = r.take(int(r.u8()), "signature")
	if r.err != nil {
		return nil
	}
	return g
}

func (r *greader) entries() []GroupEntry {
	n := int(r.u16())
	if r.err == nil && n > MaxDigest {
		r.err = groupErr("%d digest entries, at most %d", n, MaxDigest)
	}
	if r.err == nil && n*32 > len(r.b) {
		r.err = groupErr("truncated digest")
	}
	var es []GroupEntry
	for i := 0; i < n && r.err == nil; i++ {
		es = append(es, GroupEntry{Origin: r.id(), Epoch: r.u64(), Next: r.u64()})
	}
	return es
}

func (r *greader) data() *GroupDataFrame {
	d := &GroupDataFrame{Origin: r.id(), Epoch: r.u64(), Seq: r.u64()}
	if r.err == nil && d.Seq == 0 {
		r.err = groupErr("data sequence number 0")
	}
	n := int(r.u16())
	if r.err == nil && n > MaxDests {
		r.err = groupErr("%d destinations, at most %d", n, MaxDests)
	}
	if r.err == nil && n*16 > len(r.b) {
		r.err = groupErr("truncated destinations")
	}
	for i := 0; i < n && r.err == nil; i++ {
		d.Dests = append(d.Dests, r.id())
	}
	d.Payload = r.take(int(r.u32()), "payload")
	d.Sig = r.take(int(r.u8()), "signature")
	if r.err != nil {
		return nil
	}
	return d
}
