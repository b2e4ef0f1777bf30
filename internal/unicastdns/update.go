package unicastdns

import (
	"github.com/miekg/dns"
)

// Update is one dynamic update (RFC 2136 §2.5): its operations are applied
// by the server in order and atomically, all or none. Build it with the
// methods below and send it with [Client.Update]. The zero Update is empty
// and ready to use.
type Update struct {
	prereqs []dns.RR
	ops     []dns.RR
}

// RequireNameNotInUse makes the update apply only if no record at all
// exists at name (RFC 2136 §2.4.5); otherwise the server answers YXDOMAIN
// and changes nothing.
func (u *Update) RequireNameNotInUse(name string) {
	u.prereqs = append(u.prereqs, &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeANY, Class: dns.ClassNONE}})
}

// RequireNoRRset makes the update apply only if no record of type rrtype
// exists at name (RFC 2136 §2.4.4); otherwise the server answers YXRRSET
// and changes nothing.
func (u *Update) RequireNoRRset(name string, rrtype uint16) {
	u.prereqs = append(u.prereqs, &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: rrtype, Class: dns.ClassNONE}})
}

// RequireRRset makes the update apply only if the RRset of the given
// records' name and type holds exactly these records (RFC 2136 §2.4.2,
// value dependent; TTLs are ignored); otherwise the server answers NXRRSET
// and changes nothing.
func (u *Update) RequireRRset(rrs ...dns.RR) {
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		rr.Header().Class = dns.ClassINET
		rr.Header().Ttl = 0
		u.prereqs = append(u.prereqs, rr)
	}
}

// Add adds each record (class IN, with its TTL) to its RRset. Adding a record
// that exists already only refreshes it (and its TTL).
func (u *Update) Add(rrs ...dns.RR) {
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		rr.Header().Class = dns.ClassINET
		u.ops = append(u.ops, rr)
	}
}

// DeleteRRset deletes every record of the given type at name.
func (u *Update) DeleteRRset(name string, rrtype uint16) {
	u.ops = append(u.ops, &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: rrtype, Class: dns.ClassANY}})
}

// DeleteName deletes every record at name.
func (u *Update) DeleteName(name string) {
	u.ops = append(u.ops, &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeANY, Class: dns.ClassANY}})
}

// Delete deletes each given record (matched by name, type and data; the
// TTL is ignored), leaving the rest of its RRset.
func (u *Update) Delete(rrs ...dns.RR) {
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		h := rr.Header()
		h.Class = dns.ClassNONE
		h.Ttl = 0
		u.ops = append(u.ops, rr)
	}
}

// Len returns the number of operations.
func (u *Update) Len() int { return len(u.ops) }
