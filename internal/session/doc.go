// Package session is the session core of a nearnet connection: what holds
// across the links of one Conn rather than on any one link. The root's Conn
// drives its parts, each guarded by the Conn's lock: the send log that
// session resume replays (Log), the receive queue ordered across links
// (Recv), when to acknowledge it (Acks), duplicate resolution (Better,
// CheckBase, WatchGap) and the debounced viability report (Viability).
// Timers come from a Clock, so the tests fire them by hand. PROTOCOL.md,
// "Session resume" and "Duplicate connections", is the contract.
package session
