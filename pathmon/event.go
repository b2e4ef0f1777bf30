package pathmon

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Kind says what an [Event] reports.
type Kind int

const (
	// InterfaceAdded: an interface appeared (or was renamed into the
	// monitored set). If it is up, an InterfaceUp follows, then an
	// AddrAdded per address.
	InterfaceAdded Kind = iota + 1
	// InterfaceRemoved: an interface went away (or was renamed out of
	// the monitored set). An AddrRemoved per address and, if it was up, an
	// InterfaceDown come first.
	InterfaceRemoved
	// InterfaceUp: the interface became usable: administratively up and
	// running (it has carrier), see [Interface.Up].
	InterfaceUp
	// InterfaceDown: the interface stopped being usable: taken down, or it
	// lost carrier.
	InterfaceDown
	// AddrAdded: the interface got an address (Event.Addr).
	AddrAdded
	// AddrRemoved: the interface lost an address (Event.Addr).
	AddrRemoved
)

var kindNames = [...]string{
	InterfaceAdded:   "InterfaceAdded",
	InterfaceRemoved: "InterfaceRemoved",
	InterfaceUp:      "InterfaceUp",
	InterfaceDown:    "InterfaceDown",
	AddrAdded:        "AddrAdded",
	AddrRemoved:      "AddrRemoved",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText returns the kind's name, for example "AddrAdded".
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a name written by MarshalText.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if n != "" && n == string(b) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("pathmon: unknown event kind %q", b)
}

// Event is one change of an interface or of its addresses.
type Event struct {
	Kind      Kind
	Interface string       // the interface's name
	Index     int          // the interface's index; names can be reused, indexes identify
	Addr      netip.Prefix // the address and its prefix length, for AddrAdded and AddrRemoved
	Time      time.Time    // when the monitor saw the change
}

// String returns the event in a form for logs, for example
// "AddrAdded eth0[2] 10.0.0.1/24". The time is left out.
func (e Event) String() string {
	s := e.Kind.String() + " " + e.Interface + "[" + strconv.Itoa(e.Index) + "]"
	if e.Kind == AddrAdded || e.Kind == AddrRemoved {
		s += " " + e.Addr.String()
	}
	return s
}
