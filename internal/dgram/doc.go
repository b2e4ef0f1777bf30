// Package dgram is nearnet's best-effort datagram layer for connections
// whose reliable transport is WebSocket over TLS: a parallel UDP flow,
// negotiated on the reliable connection and keyed from its TLS session.
//
// Each node opens one [Mux] per address family ([Listen]); it owns one UDP
// socket and serves every flow. For each connection the two sides exchange,
// on the reliable connection, the Mux's port and a [SessionID] each picked
// for receiving ([NewSessionID]), derive [Keys] from the TLS exporter
// ([ExporterLabel], [ExporterContext], [KeysFromExporter]) and call
// [Mux.NewFlow]. A [Flow] then has [Flow.Send], [Flow.Receive] and
// [Flow.MaxSize]; its [Flow.Stats] count what was sent, received and
// dropped, by reason. Close the flow with its connection.
//
// # Wire format
//
// This is the text PROTOCOL.md carries.
//
// Every datagram is one UDP datagram, never IP-fragmented (don't-fragment is
// set where the OS allows it), and starts with a 17-byte header:
//
//	offset  size  field
//	0       1     kind: 0x01 sealed, 0x02 plaintext (security mode none)
//	1       8     receiver session ID, big-endian: the ID the receiving side
//	              announced for this flow
//	9       8     packet number, big-endian: 0 for the first datagram a side
//	              sends on the flow, then 1, 2, ...; never reused
//	17      ...   kind 0x01: AES-256-GCM ciphertext of the payload, then the
//	              16-byte tag; kind 0x02: the payload
//
// Sealing (kind 0x01): key = the sender's key (below); nonce = 4 zero bytes
// followed by the 8-byte packet number (12 bytes); additional data = the 17
// header bytes. The receiver opens with its peer's key and the same nonce
// and additional data. The header costs 17 bytes and the tag 16: a sealed
// datagram is the payload plus 33 bytes, a plaintext one the payload plus 17.
//
// Keys: both sides compute
//
//	material = TLS-Exporter(label   = "EXPORTER-nearnet-datagram",
//	                        context = dialer's session ID || listener's session ID
//	                                  (8 bytes each, big-endian: 16 bytes),
//	                        length  = 64)                     -- RFC 8446 section 7.5
//
// The first 32 bytes are the key of the datagrams the dialer (TLS client)
// sends, the last 32 that of the datagrams the listener sends. Because the
// session IDs are in the context, every flow has its own keys, so packet
// numbers may restart at 0 on a new flow of the same TLS connection. On
// Apple platforms: sec_protocol_metadata_create_secret_with_context and
// CryptoKit's AES.GCM.
//
// A receiver drops, counting each by reason, and never delivers: a datagram
// shorter than the header or of an unknown kind; one whose session ID names
// no open flow; on a secure flow, a plaintext one, one shorter than header
// plus tag, one whose tag does not verify, and one whose packet number was
// already accepted or is 1984 or more below the highest accepted (replay
// protection: a 2048-bit sliding window, as in RFC 6479); on an insecure
// flow, one from another address and port than the peer's. Security mode none
// uses kind 0x02 and has no authentication and no replay protection: a
// datagram may be forged, altered or delivered twice by anyone on the path.
// A datagram that is delivered is delivered whole; there is no ordering and
// no retransmission.
//
// Addresses: the dialer sends to the IP address of the reliable
// connection's peer and the UDP port the listener announced. The listener
// sends to the source address of the authenticated datagram with the highest
// packet number it has received (for mode none: of the first datagram), or
// to an address the application gave. A secure receiver accepts
// authenticated datagrams from any source address.
//
// Size: a side sends no datagram larger than the MTU of the path to its peer
// (the route's MTU as the OS reports it), so the largest payload is that MTU
// less 20 bytes of IPv4 header (40 for IPv6), 8 of UDP and 33 (17) of
// datagram overhead: 1439 bytes on an Ethernet link (MTU 1500) with IPv4.
//
// Expiry: a flow that neither sends nor receives for the idle timeout (30
// seconds by default) is closed; datagrams for it are dropped as for an
// unknown session. A new flow must be negotiated to continue.
package dgram
