// Package session is the session core of a nearnet connection: what holds
// across the links of one Conn rather than on any one link. A Session owns
// the Conn's lock and drives its parts, each guarded by that lock and
// owning its fields:
//
//   - Links: the attached links (Path) and the one that sends;
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
// The Session reaches its node through an Owner (callbacks, stream handles,
// redial rounds) and makes the API's errors through its Config. The link
// handshake (Handshaker), the connect retry (Connect) and the callback
// queue (Events) are here too. Timers come from a Clock, so the tests fire
// them by hand. PROTOCOL.md, "Session resume" and "Duplicate connections",
// is the contract.
package session
