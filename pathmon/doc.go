// Package pathmon watches the network paths of this machine: interfaces
// appearing and disappearing, going up and down, and their addresses
// coming and going. The rest of nearnet uses it to re-announce services
// (discovery), judge connections' viability and reconnect.
//
// Start a [Monitor] with [New], then read [Monitor.Events] or call
// [Monitor.Watch] (as many watchers as needed, each with its own queue);
// [Monitor.Snapshot] returns the current interfaces. [Monitor.Close] stops
// it and leaves no goroutine behind.
//
// # Events
//
// Each [Event] is one change of one interface, identified by index (names
// can be reused) and named. They come in an order a consumer can follow
// step by step: InterfaceAdded, then InterfaceUp if it is up, then one
// AddrAdded per address; before InterfaceRemoved, one AddrRemoved per
// address and InterfaceDown if it was up. A rename is a removal under the
// old name and an addition under the new. "Up" means usable: up and
// running, so losing carrier is InterfaceDown ([Interface.Up]).
//
// # Coalescing
//
// The monitor never waits for its consumers. Each consumer (the Events
// channel, each Watch) has a queue of at most 256 events; when a slow
// consumer's queue would grow past it, the queue is replaced by the
// shortest list of events that leads from what that consumer was last told
// to the current state. A consumer then misses intermediate steps (an
// address that came and went) but never ends in a wrong state, and memory
// stays bounded by the number of interfaces and addresses, not by the rate
// of changes. A polling monitor coalesces the same way between two reads.
//
// # Platforms
//
// On Linux the monitor follows rtnetlink notifications
// (github.com/vishvananda/netlink link and address subscriptions) and sees
// changes as the kernel makes them. If a notification may have been lost
// (the socket overflowed, a message did not decode), it subscribes again
// and reads the whole state; if netlink is not available at all, it polls.
// Elsewhere (macOS, Windows, the BSDs), and on Linux with
// Options.ForcePoll, it reads [net.Interfaces] and the addresses every
// Options.PollInterval (2 seconds by default) and reports the differences.
// [Monitor.Mode] says which is in use.
package pathmon
