// Package nearnet is secure networking between nearby peers: discovery over
// mDNS/DNS-SD, TLS 1.3 with both sides authenticated, and reliable messages
// with flow control over WebSocket. PROTOCOL.md specifies the wire format.
//
// Start with [NewNode] and a [Config] that picks a security mode (a
// pre-shared Key, pinned Trust fingerprints, or SecurityNone by name). Then:
//
//   - [Node.Listen] accepts connections and advertises the node;
//     [Node.Accept] returns each peer that connected.
//   - [Node.Browse] reports peers as they are found, updated and lost;
//     [Node.Connect] (by name, peer ID or host:port) or [Node.ConnectAdvert]
//     returns a ready [Conn].
//   - [Conn.SendMessage] and [Conn.ReceiveMessage] carry messages; boundaries
//     and order are kept, and a full buffer blocks the sender.
//   - [Conn.Close] ends gracefully once the peer has everything;
//     [Node.Close] ends it all.
//
// Beyond the link, Config.Domain and Config.DNSServer (with a TSIGKey to be
// found, not only to find) add a wide-area DNS-SD domain on unicast DNS:
// the node registers there and browses there too, with the same adverts
// and events.
//
// Two nodes that trust nothing yet can pair by a short code: one calls
// [Node.OfferPairing] and shows the code, the other types it into
// [Node.AnswerPairing]; [Pairing.Connect] and [Pairing.Wait] return the
// peer, pinned from then on (SecurityPinned, Config.KnownPeersFile).
//
// A Node keeps one Conn per peer: when two peers dial each other at once,
// both keep the same connection and no message is lost.
package nearnet
