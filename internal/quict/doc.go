// Package quict is nearnet's QUIC transport seam: a small layer over
// github.com/quic-go/quic-go that gives the root package what it needs
// from a QUIC connection in its own terms (net.Conn streams, typed close
// errors), so that QUIC can sit beside WebSocket over TLS.
//
// A node opens one [Transport] per address family ([ListenUDP] or
// [NewTransport]): one UDP socket that both accepts ([Transport.Listen],
// then [Listener.Accept]) and dials ([Transport.Dial]). [Listen] and [Dial]
// are the one-socket-each shortcuts. Pass TLS configurations from
// security.ServerConfig and security.ClientConfig: they are cloned and the
// clones get ALPN "nearnet/1" and TLS 1.3 only, so [Conn.ConnectionState]
// carries the exporter that security.Proof needs. [Config] sets timeouts,
// keepalives, flow-control windows and the stream limit.
//
// How nearnet maps onto QUIC (RFC 9000, RFC 9221):
//
//   - Control stream: the first bidirectional stream (stream ID 0), opened
//     by the dialer. The dialer speaks first on it: QUIC tells the peer of a
//     stream only with its first byte, and [Listener.Accept] returns a
//     connection only once its control stream has arrived (within
//     [Config.HandshakeTimeout], else the connection is closed with
//     [CodeProtocolError]). nearnet runs its WebSocket-framed message
//     protocol on it. [Conn.Control] is a [*Stream].
//   - Streams: every further bidirectional stream ([Conn.OpenStream],
//     [Conn.AcceptStream]) is a [*Stream], a net.Conn with deadlines and
//     [Stream.CloseWrite] (a FIN). [Stream.Close] sends a FIN and, if the
//     peer may still be writing, STOP_SENDING with [StreamCodeClosed]; an
//     abandoned stream surfaces as a [*StreamError]. Unidirectional streams
//     are not used (the peer may open none). Flow control is per stream and
//     per connection: a reader that stops reading blocks its writer once
//     the receive window ([Config.MaxStreamReceiveWindow]) is full.
//   - Datagrams: DATAGRAM frames, enabled on every connection.
//     [Conn.MaxDatagramSize] is what fits in one packet on the path now;
//     a larger payload is a [*DatagramTooLargeError], never split.
//   - Close: [Conn.CloseWithError] sends CONNECTION_CLOSE with an
//     application error code and reason; nearnet uses its WebSocket close
//     codes (1000, 4001 to 4005) as the code. Both sides' operations then
//     fail with a [*CloseError] carrying them (Remote tells whose close it
//     was); a TLS alert is a [*HandshakeError]; a silent peer is quic-go's
//     idle-timeout error, a net.Error whose Timeout is true.
package quict
