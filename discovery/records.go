package discovery

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// TTLs (RFC 6762 §10): 120 s for records that carry a host name in their
// owner name or RDATA (A, AAAA, SRV), 75 minutes for the rest.
const (
	ttlHost  = 120
	ttlOther = 4500
	// ttlLegacy caps TTLs in legacy unicast responses (RFC 6762 §6.7).
	ttlLegacy = 10
	// maxPacket is the largest mDNS message we build (RFC 6762 §17); the
	// interface MTU lowers it.
	maxPacket = 9000
)

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func newPTR(name, target string, ttl uint32) *dns.PTR {
	return &dns.PTR{Hdr: hdr(name, dns.TypePTR, ttl), Ptr: target}
}

func newSRV(name, target string, port int, ttl uint32) *dns.SRV {
	return &dns.SRV{Hdr: hdr(name, dns.TypeSRV, ttl), Target: target, Port: uint16(port)}
}

func newTXT(name string, txt []string, ttl uint32) *dns.TXT {
	esc := make([]string, 0, len(txt))
	for _, s := range txt {
		esc = append(esc, escapeTXT(s))
	}
	if len(esc) == 0 {
		esc = []string{""} // RFC 6763 §6.1: a single empty string
	}
	return &dns.TXT{Hdr: hdr(name, dns.TypeTXT, ttl), Txt: esc}
}

func newA(name string, a netip.Addr, ttl uint32) *dns.A {
	b := a.As4()
	return &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: net.IP(b[:])}
}

func newAAAA(name string, a netip.Addr, ttl uint32) *dns.AAAA {
	b := a.As16()
	return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: net.IP(b[:])}
}

// newAddr returns an A record for an IPv4 address, an AAAA record for an
// IPv6 one.
func newAddr(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		return newA(name, a, ttl)
	}
	return newAAAA(name, a, ttl)
}

func newNSEC(name string, ttl uint32, types ...uint16) *dns.NSEC {
	return &dns.NSEC{Hdr: hdr(name, dns.TypeNSEC, ttl), NextDomain: name, TypeBitMap: types}
}

// escapeTXT turns raw bytes into the escaped form miekg/dns packs.
func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeTXT undoes the escaping miekg/dns applies when it unpacks TXT.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if v, err := strconv.Atoi(s[i+1 : i+4]); err == nil && v < 256 {
				b = append(b, byte(v))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

// txtStrings returns the raw strings of a TXT record.
func txtStrings(t *dns.TXT) []string {
	out := make([]string, 0, len(t.Txt))
	for _, s := range t.Txt {
		out = append(out, unescapeTXT(s))
	}
	return out
}

// rrAddr returns the address in an A or AAAA record, as it is on the wire:
// an IPv4-mapped address in an AAAA record stays IPv6 (see addrProblem).
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch v := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(v.A.To4())
		return a, ok
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(v.AAAA)
		return a, ok && a.Is6()
	}
	return netip.Addr{}, false
}

// addrProblem says why the address of an A or AAAA record received on l
// cannot be used, or returns "" if it can. Such records are ignored (with a
// debug log) and the rest of their packet is used.
func addrProblem(rr dns.RR, a netip.Addr, l *link) string {
	_, isAAAA := rr.(*dns.AAAA)
	switch {
	case isAAAA && a.Is4In6():
		return "IPv4-mapped IPv6 address in an AAAA record"
	case a.IsUnspecified() || a.IsMulticast():
		return "not a unicast address"
	case a.IsLoopback() && !l.loopback():
		return "loopback address on a non-loopback interface"
	case a.Is6() && a.IsLinkLocalUnicast() && l.loopback():
		return "link-local address on a loopback interface"
	case a.Is6() && (a.IsInterfaceLocalMulticast() || isSiteLocal(a)):
		return "address of a deprecated or host-only scope"
	}
	return ""
}

// isSiteLocal reports whether a is in fec0::/10 (deprecated by RFC 3879).
func isSiteLocal(a netip.Addr) bool {
	b := a.As16()
	return b[0] == 0xfe && b[1]&0xc0 == 0xc0
}

// zoned returns a with l as its zone if it is an IPv6 link-local address,
// which is reachable only through the interface it was learned on.
func zoned(a netip.Addr, l *link) netip.Addr {
	if a.Is6() && a.IsLinkLocalUnicast() {
		return a.WithZone(l.name())
	}
	return a
}

// rrKey identifies a record by owner name, type, class and RDATA, ignoring
// case in names and ignoring the TTL. Two records with the same key are the
// same record for known-answer and duplicate suppression.
type rrKey struct {
	name  string
	rtype uint16
	rdata string
}

func keyOf(rr dns.RR) rrKey {
	h := rr.Header()
	return rrKey{name: strings.ToLower(h.Name), rtype: h.Rrtype, rdata: string(rdataOf(rr, true))}
}

// rdataOf returns rr's uncompressed RDATA, with names lower-cased if lower.
func rdataOf(rr dns.RR, lower bool) []byte {
	if lower {
		switch v := rr.(type) {
		case *dns.PTR:
			c := *v
			c.Ptr = strings.ToLower(c.Ptr)
			rr = &c
		case *dns.SRV:
			c := *v
			c.Target = strings.ToLower(c.Target)
			rr = &c
		case *dns.NSEC:
			c := *v
			c.NextDomain = strings.ToLower(c.NextDomain)
			rr = &c
		}
	}
	buf := make([]byte, dns.Len(rr)+16)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	start := skipName(buf, 0)
	if start < 0 || start+10 > off {
		return nil
	}
	return buf[start+10 : off]
}

// compareRData orders two records for simultaneous-probe tie-breaking
// (RFC 6762 §8.2): class, then type, then raw RDATA bytes.
func compareRData(a, b dns.RR) int {
	ha, hb := a.Header(), b.Header()
	if ha.Class != hb.Class {
		return int(ha.Class) - int(hb.Class)
	}
	if ha.Rrtype != hb.Rrtype {
		return int(ha.Rrtype) - int(hb.Rrtype)
	}
	return bytes.Compare(rdataOf(a, false), rdataOf(b, false))
}

// withTTL returns a copy of rr with the given TTL and, if flush, the
// cache-flush bit set in its class.
func withTTL(rr dns.RR, ttl uint32, flush bool) dns.RR {
	c := dns.Copy(rr)
	h := c.Header()
	h.Ttl = ttl
	h.Class = dns.ClassINET
	if flush {
		h.Class |= classCacheFlush
	}
	return c
}

// packSplit packs a message with the given header, questions and records into
// one or more packets of at most limit bytes. Answers are split across
// packets; additional records fill the last packet and continue in packets
// of their own (queriers cache additional records too, RFC 6762 §6). A
// single record larger than limit still goes out, alone. If truncate is
// set (a query with a long known-answer list, RFC 6762 §7.2), every packet
// but the last has the TC bit and the questions are sent only in the first.
func packSplit(h dns.MsgHdr, qs []dns.Question, answers, authority, extra []dns.RR, limit int, truncate bool) ([][]byte, error) {
	var out [][]byte
	m := &dns.Msg{MsgHdr: h, Compress: true, Question: qs, Ns: authority}
	flush := func() error {
		b, err := m.Pack()
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	}
	for _, rr := range answers {
		m.Answer = append(m.Answer, rr)
		if m.Len() > limit && len(m.Answer)+len(m.Question)+len(m.Ns) > 1 {
			m.Answer = m.Answer[:len(m.Answer)-1]
			if truncate {
				m.Truncated = true
			}
			if len(m.Answer) > 0 || len(m.Question) > 0 || len(m.Ns) > 0 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			next := &dns.Msg{MsgHdr: h, Compress: true}
			if !truncate {
				next.Question = qs // legacy unicast responses repeat the question
			}
			next.Answer = []dns.RR{rr}
			m = next
		}
	}
	for _, rr := range extra {
		m.Extra = append(m.Extra, rr)
		if m.Len() > limit && len(m.Answer)+len(m.Question)+len(m.Ns)+len(m.Extra) > 1 {
			m.Extra = m.Extra[:len(m.Extra)-1]
			if truncate {
				break // queries carry no additional records worth splitting
			}
			if err := flush(); err != nil {
				return nil, err
			}
			m = &dns.Msg{MsgHdr: h, Compress: true, Question: qs, Extra: []dns.RR{rr}}
		}
	}
	if len(m.Answer)+len(m.Question)+len(m.Ns)+len(m.Extra) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
