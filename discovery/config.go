package discovery

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearnet/nearnet/pathmon"
)

// Config selects interfaces and logging for a [Responder] or a [Browser].
// The zero value is usable. Constructors copy it; the caller may reuse or
// change it afterwards.
type Config struct {
	// Interfaces names the network interfaces to use, for example
	// []string{"eth0"} or []string{"lo"}. If empty, every interface that is
	// up, has the MULTICAST flag and an IPv4 or IPv6 address, and is not a loopback
	// interface is used. A loopback interface works when named explicitly,
	// although Linux gives "lo" no MULTICAST flag. An unknown or down
	// interface is an error (a [*FieldError] naming it) when the Responder
	// or Browser is created. Afterwards the set follows the network when
	// Monitor is set or [Responder.Reannounce] is called: an interface
	// that appears and fits (a named one, or by the rule above) is joined,
	// one that goes away or down is dropped, and neither is an error.
	Interfaces []string

	// Monitor, if set, is watched for interface and address changes: a
	// Responder then announces new addresses, says goodbye for removed
	// ones and joins and drops interfaces by itself (as
	// [Responder.Reannounce] does, but only when something changed), and
	// a Browser joins new interfaces, queries on them at once and forgets
	// what it learned on interfaces that went away. Changes are batched
	// for 100 ms, since one move is usually several events. The caller
	// owns the monitor (one can serve many responders and browsers) and
	// closes it after them; a closed monitor is simply no longer
	// followed. If nil, nothing is watched.
	Monitor *pathmon.Monitor

	// Logger receives debug and warning messages. If nil, nothing is
	// logged.
	Logger *slog.Logger

	// Net, if set, is the network to run on instead of the host's: its
	// interfaces (which Interfaces names) and its sockets, such as a
	// userspace TCP/IP stack's. Nothing then goes through the host's
	// sockets. Monitor watches the host, so leave it nil with Net;
	// Reannounce re-reads Net's interfaces. If nil, the host's network.
	Net Net
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
	nw    Net // where ifi is
	ifi   net.Interface
	limit int // largest mDNS payload in bytes: MTU minus IPv6 and UDP headers, at most maxPacket

	mu       sync.Mutex // guards prefixes and readAt
	prefixes []netip.Prefix
	readAt   time.Time

	// mcast6Refused is set when the kernel refused IPv6 multicast on this
	// (loopback) interface: Linux's "lo" without the MULTICAST flag. IPv6
	// multicast is not tried again until the interface is re-read.
	mcast6Refused atomic.Bool
}

// addrCacheTime is how long a link's address list is reused before the
// system is asked again: answering a query must not cost a netlink dump
// per record.
const addrCacheTime = time.Second

func (l *link) name() string { return l.ifi.Name }

// invalidate makes the next addrs call ask the system.
func (l *link) invalidate() {
	l.mu.Lock()
	l.readAt = time.Time{}
	l.mu.Unlock()
	l.mcast6Refused.Store(false)
}

// addrs returns the interface's current IPv4 and IPv6 addresses and their
// prefixes (at most addrCacheTime old), IPv4 first. Prefixes carry no zone:
// an IPv6 link-local address is l's by definition.
func (l *link) addrs() []netip.Prefix {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); l.readAt.IsZero() || now.Sub(l.readAt) > addrCacheTime {
		l.prefixes, l.readAt = nil, now
		if ifi, err := interfaceByIndex(l.nw, l.ifi.Index); err == nil {
			l.prefixes = ifPrefixes(l.nw, ifi)
		}
	}
	return l.prefixes
}

// families reports whether l has IPv4 and IPv6 addresses.
func (l *link) families() (has4, has6 bool) {
	for _, p := range l.addrs() {
		if p.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	return has4, has6
}

func (l *link) loopback() bool { return l.ifi.Flags&net.FlagLoopback != 0 }

// ifPrefixes returns the interface's unicast IPv4 and IPv6 prefixes, IPv4
// first.
func ifPrefixes(nw Net, ifi *net.Interface) []netip.Prefix {
	as, err := nw.InterfaceAddrs(ifi)
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
		ip = ip.Unmap().WithZone("")
		if ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		ones, _ := n.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	slices.SortStableFunc(out, func(a, b netip.Prefix) int {
		if a.Addr().Is4() == b.Addr().Is4() {
			return 0
		}
		if a.Addr().Is4() {
			return -1
		}
		return 1
	})
	return out
}

// resolveLinks turns Config.Interfaces into links.
func resolveLinks(nw Net, names []string) ([]*link, error) {
	var ifis []net.Interface
	if len(names) == 0 {
		all, err := nw.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, ifi := range all {
			if usableByDefault(nw, &ifi) {
				ifis = append(ifis, ifi)
			}
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
			ifi, err := interfaceByName(nw, n)
			if err != nil {
				return nil, &FieldError{Field: "Config.Interfaces", Value: n, Reason: "no such network interface (available: " + interfaceNames(nw) + ")"}
			}
			if ifi.Flags&net.FlagUp == 0 {
				return nil, &FieldError{Field: "Config.Interfaces", Value: n, Reason: "interface is down"}
			}
			ifis = append(ifis, *ifi)
		}
	}
	links := make([]*link, 0, len(ifis))
	for _, ifi := range ifis {
		links = append(links, newLink(nw, ifi))
	}
	return links, nil
}

func newLink(nw Net, ifi net.Interface) *link {
	limit := maxPacket
	if ifi.MTU > 0 && ifi.MTU-48 < limit {
		limit = ifi.MTU - 48 // fits both families: IPv6 (40) + UDP (8)
	}
	if limit < 512 {
		limit = 512
	}
	return &link{nw: nw, ifi: ifi, limit: limit}
}

// usableByDefault is the rule for interfaces when Config.Interfaces is
// empty.
func usableByDefault(nw Net, ifi *net.Interface) bool {
	return ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 &&
		len(ifPrefixes(nw, ifi)) > 0
}

// reselectLinks applies Config.Interfaces (names) to the interfaces there
// are now, leniently: a named interface that is missing or down is left
// out, not an error. Links in old that still describe their interface
// (same index, name, flags and MTU) are kept, with their address cache
// cleared. If the system cannot be asked, old is returned.
func reselectLinks(nw Net, names []string, old []*link) []*link {
	all, err := nw.Interfaces()
	if err != nil {
		return old
	}
	var out []*link
	for _, ifi := range all {
		if len(names) == 0 && !usableByDefault(nw, &ifi) {
			continue
		}
		if len(names) > 0 && (!slices.Contains(names, ifi.Name) || ifi.Flags&net.FlagUp == 0) {
			continue
		}
		i := slices.IndexFunc(old, func(l *link) bool {
			return l.ifi.Index == ifi.Index && l.ifi.Name == ifi.Name && l.ifi.Flags == ifi.Flags && l.ifi.MTU == ifi.MTU
		})
		if i >= 0 {
			old[i].invalidate()
			out = append(out, old[i])
		} else {
			out = append(out, newLink(nw, ifi))
		}
	}
	return out
}

func interfaceNames(nw Net) string {
	all, err := nw.Interfaces()
	if err != nil {
		return "unknown"
	}
	var ns []string
	for _, ifi := range all {
		ns = append(ns, ifi.Name)
	}
	return strings.Join(ns, ", ")
}
