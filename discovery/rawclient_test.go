package discovery

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawClient is a test peer speaking raw mDNS on "lo" through a real socket:
// it sends hand-made packets and decodes what it receives with miekg/dns's
// strict whole-message Unpack (an implementation independent of ours).
type rawClient struct {
	c *mconn
	l *link
}

// newRawClient opens a socket on lo: port 5353 (joined to the group) or 0
// (ephemeral, as a legacy unicast querier).
func newRawClient(t testing.TB, port int) *rawClient {
	t.Helper()
	links, err := resolveLinks(hostNet{}, []string{"lo"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openConn(hostNet{}, links, port, testLogger(t), &counters{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	return &rawClient{c: c, l: links[0]}
}

func (rc *rawClient) send(t testing.TB, m *dns.Msg) {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	rc.sendBytes(t, b)
}

func (rc *rawClient) sendBytes(t testing.TB, b []byte) {
	t.Helper()
	if err := rc.c.sendMulticast(rc.l, b); err != nil {
		t.Fatal(err)
	}
}

type rawMsg struct {
	m     *dns.Msg
	size  int
	src   netip.AddrPort
	mcast bool // sent to the group, not to us
}

// recv returns the first message for which match is true, or false after
// timeout.
func (rc *rawClient) recv(t testing.TB, timeout time.Duration, match func(rawMsg) bool) (rawMsg, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		_ = rc.c.pc.SetReadDeadline(deadline)
		n, cm, src, err := rc.c.pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil {
			continue
		}
		ua := src.(*net.UDPAddr)
		r := rawMsg{m: m, size: n, src: ua.AddrPort(), mcast: cm == nil || cm.Dst == nil || cm.Dst.IsMulticast()}
		if match(r) {
			return r, true
		}
	}
	return rawMsg{}, false
}

// drain discards what the socket has received so far.
func (rc *rawClient) drain(t testing.TB) {
	rc.recv(t, 50*time.Millisecond, func(rawMsg) bool { return false })
}

// hasRR reports whether any section of m has a record of type t named name.
func hasRR(m *dns.Msg, name string, t uint16) bool {
	for _, set := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range set {
			if rr.Header().Rrtype == t && equalFold(rr.Header().Name, name) {
				return true
			}
		}
	}
	return false
}

func equalFold(a, b string) bool { return len(a) == len(b) && (a == b || lower(a) == lower(b)) }

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// rawRR builds an uncompressed wire record by hand, so tests can make
// malformed ones.
func rawRR(t testing.TB, name string, typ uint16, class uint16, ttl uint32, rdata []byte) []byte {
	t.Helper()
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	b := buf[:off]
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, class)
	b = binary.BigEndian.AppendUint32(b, ttl)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

// wireRR packs a well-formed record uncompressed.
func wireRR(t testing.TB, rr dns.RR) []byte {
	t.Helper()
	buf := make([]byte, dns.Len(rr)+64)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:off]
}

// rawResponse assembles a response packet from wire records, all counted
// as answers.
func rawResponse(recs ...[]byte) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[2:], 0x8400) // QR, AA
	binary.BigEndian.PutUint16(b[6:], uint16(len(recs)))
	for _, r := range recs {
		b = append(b, r...)
	}
	return b
}
