package pathmon

import (
	"net"
	"net/netip"
	"slices"
	"time"
)

// Interface is a network interface as the monitor last saw it.
type Interface struct {
	Index int
	Name  string
	// Flags holds net.FlagUp, FlagRunning, FlagLoopback, FlagMulticast,
	// FlagBroadcast and FlagPointToPoint, as [net.Interface.Flags] does.
	Flags net.Flags
	MTU   int
	// Prefixes are the interface's addresses, IPv4 and IPv6, each with its
	// prefix length, sorted.
	Prefixes []netip.Prefix
}

// Up reports whether the interface is usable: administratively up and
// running (on Linux, operationally up or unknown: a cable is in, a veth's
// peer is up). InterfaceUp and InterfaceDown events follow this.
func (i Interface) Up() bool {
	return i.Flags&net.FlagUp != 0 && i.Flags&net.FlagRunning != 0
}

func (i Interface) clone() Interface {
	i.Prefixes = slices.Clone(i.Prefixes)
	return i
}

// view is what a consumer of events knows about an interface: enough to
// compute the events that bring it up to date.
type view struct {
	name     string
	up       bool
	prefixes []netip.Prefix // sorted
}

func viewOf(i Interface) view { return view{name: i.Name, up: i.Up(), prefixes: i.Prefixes} }

func viewsOf(m map[int]Interface) map[int]view {
	out := make(map[int]view, len(m))
	for idx, i := range m {
		out[idx] = viewOf(i)
	}
	return out
}

// diff returns the events that turn old into new for interface idx; a nil
// view is an absent interface. A rename is a removal and an addition.
func diff(idx int, old, new *view, now time.Time) []Event {
	var evs []Event
	ev := func(k Kind, name string, p netip.Prefix) {
		evs = append(evs, Event{Kind: k, Interface: name, Index: idx, Addr: p, Time: now})
	}
	if old != nil && new != nil && old.name != new.name {
		evs = append(diff(idx, old, nil, now), diff(idx, nil, new, now)...)
		return evs
	}
	switch {
	case old == nil && new == nil:
		return nil
	case new == nil:
		for _, p := range old.prefixes {
			ev(AddrRemoved, old.name, p)
		}
		if old.up {
			ev(InterfaceDown, old.name, netip.Prefix{})
		}
		ev(InterfaceRemoved, old.name, netip.Prefix{})
		return evs
	case old == nil:
		ev(InterfaceAdded, new.name, netip.Prefix{})
		if new.up {
			ev(InterfaceUp, new.name, netip.Prefix{})
		}
		for _, p := range new.prefixes {
			ev(AddrAdded, new.name, p)
		}
		return evs
	}
	if old.up && !new.up {
		ev(InterfaceDown, new.name, netip.Prefix{})
	}
	for _, p := range old.prefixes {
		if !containsPrefix(new.prefixes, p) {
			ev(AddrRemoved, new.name, p)
		}
	}
	for _, p := range new.prefixes {
		if !containsPrefix(old.prefixes, p) {
			ev(AddrAdded, new.name, p)
		}
	}
	if !old.up && new.up {
		ev(InterfaceUp, new.name, netip.Prefix{})
	}
	return evs
}

// diffAll returns the events that turn old into new, interface by
// interface in index order.
func diffAll(old, new map[int]view, now time.Time) []Event {
	idxs := make([]int, 0, len(old)+len(new))
	for i := range old {
		idxs = append(idxs, i)
	}
	for i := range new {
		if _, ok := old[i]; !ok {
			idxs = append(idxs, i)
		}
	}
	slices.Sort(idxs)
	var evs []Event
	for _, i := range idxs {
		var o, n *view
		if v, ok := old[i]; ok {
			o = &v
		}
		if v, ok := new[i]; ok {
			n = &v
		}
		evs = append(evs, diff(i, o, n, now)...)
	}
	return evs
}

// applyEvent updates views as a consumer that received ev knows them.
func applyEvent(views map[int]view, ev Event) {
	v, ok := views[ev.Index]
	switch ev.Kind {
	case InterfaceAdded:
		views[ev.Index] = view{name: ev.Interface}
		return
	case InterfaceRemoved:
		delete(views, ev.Index)
		return
	}
	if !ok {
		return
	}
	switch ev.Kind {
	case InterfaceUp:
		v.up = true
	case InterfaceDown:
		v.up = false
	case AddrAdded:
		if !containsPrefix(v.prefixes, ev.Addr) {
			v.prefixes = addPrefix(v.prefixes, ev.Addr)
		}
	case AddrRemoved:
		v.prefixes = removePrefix(v.prefixes, ev.Addr)
	}
	views[ev.Index] = v
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	_, ok := slices.BinarySearchFunc(ps, p, comparePrefix)
	return ok
}

// addPrefix returns a new sorted slice with p added; ps is not modified.
func addPrefix(ps []netip.Prefix, p netip.Prefix) []netip.Prefix {
	i, ok := slices.BinarySearchFunc(ps, p, comparePrefix)
	if ok {
		return ps
	}
	return slices.Insert(slices.Clone(ps), i, p)
}

// removePrefix returns a new slice without p; ps is not modified.
func removePrefix(ps []netip.Prefix, p netip.Prefix) []netip.Prefix {
	i, ok := slices.BinarySearchFunc(ps, p, comparePrefix)
	if !ok {
		return ps
	}
	return slices.Delete(slices.Clone(ps), i, i+1)
}

// prefixOf turns an address from the net package into a prefix: IPv4 in
// its 4-byte form, no zone.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 { // non-canonical mask
		ones = a.BitLen()
	}
	if bits == 128 && a.Is4() {
		ones -= 96
	}
	if ones < 0 || ones > a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

// systemSnapshot reads every interface and its addresses with the net
// package (a netlink dump on Linux, the routing socket on BSDs,
// GetAdaptersAddresses on Windows).
func systemSnapshot() (map[int]Interface, error) {
	ifis, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make(map[int]Interface, len(ifis))
	for _, ifi := range ifis {
		i := Interface{Index: ifi.Index, Name: ifi.Name, Flags: ifi.Flags, MTU: ifi.MTU}
		as, err := ifi.Addrs()
		if err != nil {
			continue // gone between the two calls
		}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if p, ok := prefixOf(n); ok {
					i.Prefixes = addPrefix(i.Prefixes, p)
				}
			}
		}
		out[ifi.Index] = i
	}
	return out, nil
}
