package discovery

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Config selects interfaces and logging for a [Responder] or a [Browser].
// The zero value is usable. Constructors copy it; the caller may reuse or
// change it afterwards.
type Config struct {
	// Interfaces names the network interfaces to use, for example
	// []string{"eth0"} or []string{"lo"}. If empty, every interface that is
	// up, has the MULTICAST flag and an IPv4 address, and is not a loopback
	// interface is used. A loopback interface works when named explicitly,
	// although Linux gives "lo" no MULTICAST flag. An unknown or down
	// interface is an error (a [*FieldError] naming it). The set is fixed
	// for the lifetime of the Responder or Browser: interfaces that appear
	// later are not picked up.
	Interfaces []string

	// Logger receives debug and warning messages. If nil, nothing is
	// logged.
	Logger *slog.Logger
}

func (c *Config) logger() *slog.Logger {
	if c == nil || c.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.Logger
}

// link is one interface we send and receive on. Its methods are safe for
// concurrent use.
type link struct {
	ifi   net.Interface
	limit int // largest mDNS payload in bytes: MTU minus IPv4 and UDP headers, at most maxPacket

	mu       sync.Mutex // guards prefixes and readAt
	prefixes []netip.Prefix
	readAt   time.Time
}

// addrCacheTime is how long a link's address list is reused before the
// system is asked again: answering a query must not cost a netlink dump
// per record.
const addrCacheTime = time.Second

func (l *link) name() string { return l.ifi.Name }

// addrs returns the interface's current IPv4 addresses and their prefixes
// (at most addrCacheTime old).
func (l *link) addrs() []netip.Prefix {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); l.readAt.IsZero() || now.Sub(l.readAt) > addrCacheTime {
		l.prefixes, l.readAt = nil, now
		if ifi, err := net.InterfaceByIndex(l.ifi.Index); err == nil {
			l.prefixes = ipv4Prefixes(ifi)
		}
	}
	return l.prefixes
}

func ipv4Prefixes(ifi *net.Interface) []netip.Prefix {
	as, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range as {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !ip.Is4() {
			continue
		}
		ones, _ := n.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out
}

// resolveLinks turns Config.Interfaces into links.
func resolveLinks(names []string) ([]*link, error) {
	var ifis []net.Interface
	if len(names) == 0 {
		all, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, ifi := range all {
			if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
				continue
			}
			if len(ipv4Prefixes(&ifi)) == 0 {
				continue
			}
			ifis = append(ifis, ifi)
		}
		if len(ifis) == 0 {
			return nil, ErrNoInterfaces
		}
	} else {
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			ifi, err := net.InterfaceByName(n)
			if err != nil {
				return nil, &FieldError{Field: "Config.Interfaces", Value: n, Reason: "no such network interface (available: " + interfaceNames() + ")"}
			}
			if ifi.Flags&net.FlagUp == 0 {
				return nil, &FieldError{Field: "Config.Interfaces", Value: n, Reason: "interface is down"}
			}
			ifis = append(ifis, *ifi)
		}
	}
	links := make([]*link, 0, len(ifis))
	for _, ifi := range ifis {
		limit := maxPacket
		if ifi.MTU > 0 && ifi.MTU-28 < limit {
			limit = ifi.MTU - 28
		}
		if limit < 512 {
			limit = 512
		}
		links = append(links, &link{ifi: ifi, limit: limit})
	}
	return links, nil
}

func interfaceNames() string {
	all, err := net.Interfaces()
	if err != nil {
		return "unknown"
	}
	var ns []string
	for _, ifi := range all {
		ns = append(ns, ifi.Name)
	}
	return strings.Join(ns, ", ")
}
