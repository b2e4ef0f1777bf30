package unicastdns

import (
	"github.com/miekg/dns"
)

// Update is one dynamic update (RFC 2136 §2.5): its operations are applied
// by the server in order and atomically, all or none. Build it with the
// methods below and send it with [Client.Update]. The zero Update is empty
// and ready to use.
type Update struct {
	ops []dns.RR
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
