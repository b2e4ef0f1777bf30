// Package ice finds a path to a peer through NATs with ICE (RFC 8445, on
// pion/ice): host, server-reflexive (STUN) and relayed (TURN, RFC 8656,
// over UDP, TCP or TLS) candidates, checked in pairs, a direct pair always
// preferred to a relayed one. The path it finds is a net.PacketConn to one
// peer, on which the QUIC transport runs a nearnet link
// (quic.Transport.DialOver and ListenOver), so a session over ICE is the
// same session as over the LAN.
//
// An [Agent] is one side of one exchange: [Agent.Gather] returns the
// [Description] (credentials and candidates) to send to the peer by any
// channel (PROTOCOL.md, "Paths beyond the LAN"), and [Agent.Connect] takes
// the peer's and returns the [Path]. [Path.Info] says whether the path is
// direct or relayed, over which candidates, and its round-trip time.
package ice
