// Package wire holds nearnet's codecs: the WebSocket (RFC 6455) opening
// handshake and frames, and the nearnet messages carried inside WebSocket
// binary messages (hello, data, control). PROTOCOL.md at the repository root
// is the specification; this package is its executable form.
//
// Every decoder here reads untrusted bytes from the network. Each returns a
// typed error for bad input and never panics; each has a Fuzz target.
//
// The framing is ours rather than a WebSocket library's because nearnet's
// write path batches many frames into one TLS record when its queue is full
// and writes at once when it is empty, and because the dialer pipelines its
// hello behind the upgrade request. Neither gorilla/websocket (one Write per
// frame, and it rejects bytes sent before the 101) nor coder/websocket (which
// owns the connection) allows that. The codec is small, follows RFC 6455 to
// the letter, and is checked against an independent implementation
// (Python's websockets) in internal/e2e.
package wire
