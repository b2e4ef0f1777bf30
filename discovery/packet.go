package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// The mDNS packet decoder. It reads the header and the questions, then one
// resource record at a time: each record's owner name, type, class, TTL and
// RDLENGTH are parsed by hand so that a record whose RDATA github.com/miekg/dns
// rejects can be skipped by its length and counted, and the records after it
// still used. (dns.Msg.Unpack rejects the whole packet for one bad record.)

const (
	headerLen = 12
	// classCacheFlush is the top bit of the class in a resource record
	// (RFC 6762 §10.2); in a question the same bit asks for a unicast
	// response (RFC 6762 §5.4).
	classCacheFlush = 0x8000
	classUnicast    = 0x8000
	// maxRecords bounds the work done for one packet.
	maxRecords = 512
)

var (
	errShortPacket = errors.New("packet shorter than a DNS header")
	errBadQuestion = errors.New("malformed question")
)

type question struct {
	name    string // presentation form as miekg/dns prints it
	qtype   uint16
	class   uint16 // without the unicast-response bit
	unicast bool   // QU bit
}

type section uint8

const (
	secAnswer section = iota
	secAuthority
	secAdditional
)

type record struct {
	rr    dns.RR // header class has the cache-flush bit cleared
	flush bool   // cache-flush bit
	sec   section
}

type packet struct {
	id        uint16
	response  bool // QR bit
	opcode    int
	truncated bool // TC bit
	rcode     int
	questions []question
	records   []record
	bad       int // records skipped as malformed
}

func (p *packet) section(s section) []record {
	var out []record
	for _, r := range p.records {
		if r.sec == s {
			out = append(out, r)
		}
	}
	return out
}

// parsePacket decodes b. It fails only if the header or a question cannot be
// read; a malformed resource record is skipped (p.bad counts them). Parsing
// stops at the first record whose extent cannot be determined (its owner
// name or fixed fields run past the end). It never panics.
func parsePacket(b []byte) (p *packet, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("packet decoder panic: %v", r)
		}
	}()
	if len(b) < headerLen {
		return nil, errShortPacket
	}
	flags := binary.BigEndian.Uint16(b[2:])
	p = &packet{
		id:        binary.BigEndian.Uint16(b[0:]),
		response:  flags&(1<<15) != 0,
		opcode:    int(flags>>11) & 0xf,
		truncated: flags&(1<<9) != 0,
		rcode:     int(flags & 0xf),
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	counts := [3]int{
		int(binary.BigEndian.Uint16(b[6:])),
		int(binary.BigEndian.Uint16(b[8:])),
		int(binary.BigEndian.Uint16(b[10:])),
	}
	off := headerLen
	if qd > maxRecords {
		return nil, errBadQuestion
	}
	for i := 0; i < qd; i++ {
		name, n, err := dns.UnpackDomainName(b, off)
		if err != nil || n+4 > len(b) {
			return nil, errBadQuestion
		}
		cl := binary.BigEndian.Uint16(b[n+2:])
		p.questions = append(p.questions, question{
			name:    name,
			qtype:   binary.BigEndian.Uint16(b[n:]),
			class:   cl &^ classUnicast,
			unicast: cl&classUnicast != 0,
		})
		off = n + 4
	}
	total := 0
	for sec, count := range counts {
		for i := 0; i < count; i++ {
			if total++; total > maxRecords {
				return p, nil
			}
			r, next, ok := parseRecord(b, off)
			if next < 0 {
				// The record's extent is unknown: nothing after it can be
				// trusted. Count what is left as bad.
				p.bad++
				return p, nil
			}
			off = next
			if !ok {
				p.bad++
				continue
			}
			r.sec = section(sec)
			p.records = append(p.records, r)
		}
	}
	return p, nil
}

// parseRecord decodes the resource record at off. next is the offset of the
// following record, or -1 if it cannot be known. ok is false for a record
// that was skipped as malformed.
func parseRecord(b []byte, off int) (r record, next int, ok bool) {
	nameEnd := skipName(b, off)
	if nameEnd < 0 || nameEnd+10 > len(b) {
		return r, -1, false
	}
	rdlen := int(binary.BigEndian.Uint16(b[nameEnd+8:]))
	end := nameEnd + 10 + rdlen
	if end > len(b) {
		return r, -1, false
	}
	name, _, err := dns.UnpackDomainName(b, off)
	if err != nil {
		return r, end, false
	}
	cl := binary.BigEndian.Uint16(b[nameEnd+2:])
	h := dns.RR_Header{
		Name:     name,
		Rrtype:   binary.BigEndian.Uint16(b[nameEnd:]),
		Class:    cl,
		Ttl:      binary.BigEndian.Uint32(b[nameEnd+4:]),
		Rdlength: uint16(rdlen),
	}
	if h.Rrtype != dns.TypeOPT {
		h.Class = cl &^ classCacheFlush
		r.flush = cl&classCacheFlush != 0
	}
	// The RDATA decoders read up to the end of the slice they get (TXT
	// does), so cut it at this record's end; compression pointers only
	// point backwards.
	rr, _, err := unpackRData(h, b[:end], nameEnd+10)
	if err != nil || !validRData(rr) {
		return r, end, false
	}
	r.rr = rr
	return r, end, true
}

// unpackRData wraps dns.UnpackRRWithHeader with a recover: a decoder bug in
// one record type must cost that record only.
func unpackRData(h dns.RR_Header, b []byte, off int) (rr dns.RR, next int, err error) {
	defer func() {
		if x := recover(); x != nil {
			rr, err = nil, fmt.Errorf("rdata decoder panic: %v", x)
		}
	}()
	return dns.UnpackRRWithHeader(h, b, off)
}

// validRData rejects records that miekg/dns accepts but that carry no usable
// data for mDNS (for example an A record with zero-length RDATA).
func validRData(rr dns.RR) bool {
	switch v := rr.(type) {
	case *dns.A:
		return len(v.A) == 4 || (len(v.A) == 16 && v.A.To4() != nil)
	case *dns.AAAA:
		return len(v.AAAA) == 16
	case *dns.PTR:
		return v.Ptr != "" && v.Hdr.Rdlength > 0
	case *dns.SRV:
		return v.Target != "" && v.Hdr.Rdlength >= 7
	case *dns.TXT, *dns.NSEC:
		return true
	}
	return rr != nil
}

// skipName returns the offset just past the (possibly compressed) name at
// off without following pointers, or -1 if the name runs past the end of b.
func skipName(b []byte, off int) int {
	for n := 0; n < 128; n++ {
		if off >= len(b) {
			return -1
		}
		c := int(b[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(b) {
				return -1
			}
			return off + 2
		default:
			return -1
		}
	}
	return -1
}
