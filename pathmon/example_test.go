package pathmon_test

import (
	"fmt"
	"net/netip"

	"github.com/nearnet/nearnet/pathmon"
)

func ExampleEvent_String() {
	ev := pathmon.Event{Kind: pathmon.AddrAdded, Interface: "eth0", Index: 2, Addr: netip.MustParsePrefix("192.0.2.7/24")}
	fmt.Println(ev)
	fmt.Println(pathmon.Event{Kind: pathmon.InterfaceDown, Interface: "eth0", Index: 2})
	// Output:
	// AddrAdded eth0[2] 192.0.2.7/24
	// InterfaceDown eth0[2]
}
