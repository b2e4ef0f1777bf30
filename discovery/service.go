package discovery

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Service describes one DNS-SD service instance: what [Responder.Register]
// advertises and what a [Browser] reports.
//
// A Service is a plain value; the maps and slices in a Service handed to an
// event callback or returned by a method are copies the caller may keep and
// modify.
type Service struct {
	// Instance is the user-visible instance name, unescaped UTF-8 (for
	// example "Living Room"): 1-63 bytes, no ASCII control characters.
	// [Responder.Register] may rename it to "Instance (2)" and so on when
	// another responder already owns the name.
	Instance string

	// Type is the service type, "_name._tcp" or "_name._udp" (RFC 6335;
	// see [ValidateServiceType]), for example "_nearnet._tcp".
	Type string

	// Domain is the DNS-SD domain. A [Responder] supports only "local."
	// (mDNS; empty means "local."); [RegisterWideArea] sets it to its
	// WideAreaConfig.Domain, and wide-area browse results carry that
	// domain ("example.test.").
	Domain string

	// Host is the target host name of the SRV record, for example
	// "mybox.local.". If empty, Register uses the responder's host name, a
	// random name such as "nn-1f2e3d4c5b6a7980.local." that is derived from
	// nothing persistent (see [Responder.HostName]). A name without the
	// ".local." suffix gets it appended. Register may rename a conflicting
	// host to "name-2.local." and so on.
	Host string

	// Port is the service's port, 1-65535.
	Port int

	// Addrs are the host's addresses. Browse results only: Register
	// ignores it and advertises, on each interface, that interface's own
	// IPv4 addresses.
	Addrs []netip.Addr

	// TXT holds the TXT attributes (RFC 6763 §6). See [EncodeTXT] for the
	// rules; browse results have lower-case keys (see [DecodeTXT]). Nil
	// means no attributes.
	TXT map[string]string

	// Interface is the name of the network interface the service was seen
	// on. Browse results only; for a service seen on several interfaces it
	// is the interface its current SRV record came from.
	Interface string
}

func (s Service) clone() Service {
	c := s
	if s.Addrs != nil {
		c.Addrs = append([]netip.Addr(nil), s.Addrs...)
	}
	if s.TXT != nil {
		c.TXT = make(map[string]string, len(s.TXT))
		for k, v := range s.TXT {
			c.TXT[k] = v
		}
	}
	return c
}

const (
	localDomain  = "local."
	servicesEnum = "_services._dns-sd._udp.local."
	maxInstance  = 63 // bytes, one DNS label
)

// ValidateServiceType reports whether t is a DNS-SD service type of the form
// "_name._tcp" or "_name._udp", where name follows RFC 6335 §5.1: 1-15
// characters, only letters, digits and hyphens, at least one letter, no
// hyphen at the start or end and no two hyphens in a row. The error is a
// [*FieldError] with Field "Service.Type".
func ValidateServiceType(t string) error {
	bad := func(reason string) error {
		return &FieldError{Field: "Service.Type", Value: t, Reason: reason}
	}
	name, proto, ok := strings.Cut(t, ".")
	if !ok || strings.Contains(proto, ".") {
		return bad(`want "_name._tcp" or "_name._udp"`)
	}
	if proto != "_tcp" && proto != "_udp" {
		return bad(`protocol label must be "_tcp" or "_udp"`)
	}
	if !strings.HasPrefix(name, "_") {
		return bad(`service name must start with "_"`)
	}
	name = name[1:]
	if n := len(name); n < 1 || n > 15 {
		return bad("service name must be 1-15 characters (RFC 6335)")
	}
	letter := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(name)-1 {
				return bad("service name must not start or end with a hyphen (RFC 6335)")
			}
			if name[i-1] == '-' {
				return bad("service name must not contain two hyphens in a row (RFC 6335)")
			}
		default:
			return bad(fmt.Sprintf("service name may only contain letters, digits and hyphens, found %q (RFC 6335)", c))
		}
	}
	if !letter {
		return bad("service name must contain at least one letter (RFC 6335)")
	}
	return nil
}

// ValidateInstance reports whether name can be used as a service instance
// name (RFC 6763 §4.1.1): valid UTF-8, 1-63 bytes, no ASCII control
// characters. The error is a [*FieldError] with Field "Service.Instance".
func ValidateInstance(name string) error {
	bad := func(reason string) error {
		return &FieldError{Field: "Service.Instance", Value: name, Reason: reason}
	}
	switch {
	case name == "":
		return bad("must not be empty")
	case len(name) > maxInstance:
		return bad(fmt.Sprintf("is %d bytes, the limit is %d bytes of UTF-8", len(name), maxInstance))
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return bad("must not contain ASCII control characters")
		}
	}
	return nil
}

// normalizeDomain maps "" and "local" to "local." and rejects the rest.
func normalizeDomain(d string) (string, error) {
	switch strings.ToLower(d) {
	case "", "local", "local.":
		return localDomain, nil
	}
	return "", &FieldError{Field: "Service.Domain", Value: d, Reason: `only "local." (multicast DNS) is supported`}
}

// normalizeHost turns "box", "box.local" or "box.local." into "box.local."
// and checks the labels.
func normalizeHost(h string) (string, error) {
	bad := func(reason string) error {
		return &FieldError{Field: "Service.Host", Value: h, Reason: reason}
	}
	n := strings.TrimSuffix(h, ".")
	if lower := strings.ToLower(n); !strings.HasSuffix(lower, ".local") && lower != "local" {
		n += ".local"
	}
	if len(n)+1 > 255 {
		return "", bad("longer than 255 bytes")
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 {
			return "", bad("every label must be 1-63 bytes")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "", bad("host labels may only contain letters, digits and hyphens")
			}
		}
	}
	return n + ".", nil
}

// escapeLabel turns raw label bytes into the presentation form used by
// github.com/miekg/dns (dots, backslashes and other specials escaped,
// non-printable bytes as \DDD).
func escapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == '\\' || c == ' ' || c == '(' || c == ')' || c == ';' || c == '@' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x21 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitFirstLabel splits a presentation-format name at its first unescaped
// dot and returns the unescaped first label and the rest.
func splitFirstLabel(name string) (label, rest string, ok bool) {
	var b []byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '\\':
			if i+3 < len(name) && isDigit(name[i+1]) && isDigit(name[i+2]) && isDigit(name[i+3]) {
				v, _ := strconv.Atoi(name[i+1 : i+4])
				if v > 255 {
					return "", "", false
				}
				b = append(b, byte(v))
				i += 3
			} else if i+1 < len(name) {
				b = append(b, name[i+1])
				i++
			} else {
				return "", "", false
			}
		case c == '.':
			return string(b), name[i+1:], true
		default:
			b = append(b, c)
		}
	}
	return "", "", false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// renameInstance returns the n-th alternative of name (n >= 2): "name (n)",
// shortening name at a rune boundary so the result fits in 63 bytes.
func renameInstance(base string, n int) string {
	suffix := fmt.Sprintf(" (%d)", n)
	for len(base)+len(suffix) > maxInstance {
		_, size := utf8.DecodeLastRuneInString(base)
		base = base[:len(base)-size]
	}
	return base + suffix
}

// renameHost returns the n-th alternative of host (n >= 2): "box-n.local.".
func renameHost(base string, n int) string {
	first, rest, _ := strings.Cut(base, ".")
	suffix := "-" + strconv.Itoa(n)
	if len(first)+len(suffix) > 63 {
		first = first[:63-len(suffix)]
	}
	return first + suffix + "." + rest
}

// serviceName is "_type._tcp.local.".
func serviceName(typ, domain string) string { return typ + "." + domain }

// instanceName is the escaped full instance name.
func instanceName(inst, typ, domain string) string {
	return escapeLabel(inst) + "." + serviceName(typ, domain)
}
