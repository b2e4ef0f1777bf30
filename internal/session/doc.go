// Package session is the session core of a nearnet connection: what holds
// across the links of one Conn rather than on any one link. The root's Conn
// drives its parts, each guarded by the Conn's lock and owning its fields:
//
//   - Links: the attached links and the one that sends, over the small Link
//     interface (the root's per-link wrapper implements it);
//   - Log: the messages sent and not yet acknowledged, which resume resends;
//   - Recv: the receive queue, ordered by sequence number across links;
//   - Acks: when to acknowledge what was received;
//   - Direct: the one reader reading a link itself, kicked when its ctx ends;
//   - Better, CheckBase, WatchGap: duplicate resolution and base messages;
//   - LinkEnded: what the end of a link means for the session;
//   - Suspension: waiting for a link to resume the session, within a window;
//   - Viability: whether traffic gets through, and its debounced report;
//   - Machine: the state and its watchers.
//
// Timers come from a Clock, so the tests fire them by hand. PROTOCOL.md,
// "Session resume" and "Duplicate connections", is the contract.
package session
