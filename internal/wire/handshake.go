package wire

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// Path is the request target of nearnet's WebSocket upgrade.
const Path = "/nearnet/v1"

// Subprotocol names protocol version 1 in Sec-WebSocket-Protocol.
const Subprotocol = "nearnet.v1"

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key (§4.2.2).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// NewKey returns a Sec-WebSocket-Key for 16 nonce bytes.
func NewKey(nonce [16]byte) string { return base64.StdEncoding.EncodeToString(nonce[:]) }

// AppendUpgradeRequest appends the client's opening handshake.
func AppendUpgradeRequest(dst []byte, host, key string) []byte {
	dst = append(dst, "GET "+Path+" HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: "+Subprotocol+"\r\n\r\n"...)
	return dst
}

// AppendUpgradeResponse appends the server's 101 answer to a request that
// carried key.
func AppendUpgradeResponse(dst []byte, key string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, AcceptKey(key)...)
	dst = append(dst, "\r\nSec-WebSocket-Protocol: "+Subprotocol+"\r\n\r\n"...)
	return dst
}

// HandshakeError is a failed opening handshake. On the server side Status
// is the HTTP status to answer with; on the client side it is the status the
// server answered with (0 if it did not answer with HTTP).
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	if e.Status == 0 {
		return "nearnet: websocket handshake: " + e.Reason
	}
	return fmt.Sprintf("nearnet: websocket handshake: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// AppendErrorResponse appends the HTTP answer to a refused upgrade.
func AppendErrorResponse(dst []byte, e *HandshakeError) []byte {
	body := e.Reason + "\n"
	dst = fmt.Appendf(dst, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n", e.Status, http.StatusText(e.Status), len(body))
	if e.Status == http.StatusUpgradeRequired {
		dst = append(dst, "Sec-WebSocket-Version: 13\r\n"...)
	}
	return append(append(dst, "\r\n"...), body...)
}

// ReadUpgradeRequest reads and checks a client's opening handshake and
// returns its Sec-WebSocket-Key. The path is [Path] or "/": a Network
// framework connection to a Bonjour service endpoint has no path. A request nearnet cannot serve gives a
// [*HandshakeError] whose Status is the answer to send.
func ReadUpgradeRequest(br *bufio.Reader) (key string, err error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		if err == io.EOF {
			return "", err
		}
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return "", &HandshakeError{Status: http.StatusRequestTimeout, Reason: "no complete upgrade request within the handshake timeout"}
		}
		return "", &HandshakeError{Status: http.StatusBadRequest, Reason: "malformed HTTP request: " + err.Error()}
	}
	if req.Body != nil && req.Body != http.NoBody {
		req.Body.Close()
	}
	bad := func(status int, format string, args ...any) (string, error) {
		return "", &HandshakeError{Status: status, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case req.Method != http.MethodGet:
		return bad(http.StatusMethodNotAllowed, "method %s; the upgrade is a GET", req.Method)
	case req.URL.Path != Path && req.URL.Path != "/":
		return bad(http.StatusNotFound, "no nearnet endpoint at %q; use %s", req.URL.Path, Path)
	case !req.ProtoAtLeast(1, 1):
		return bad(http.StatusBadRequest, "HTTP/1.1 or later required")
	case !headerHasToken(req.Header, "Upgrade", "websocket"):
		return bad(http.StatusUpgradeRequired, "missing Upgrade: websocket")
	case !headerHasToken(req.Header, "Connection", "upgrade"):
		return bad(http.StatusBadRequest, "missing Connection: Upgrade")
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		return bad(http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version %q; 13 required", req.Header.Get("Sec-WebSocket-Version"))
	}
	key = req.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return bad(http.StatusBadRequest, "Sec-WebSocket-Key is not 16 bytes in base64")
	}
	if !headerHasToken(req.Header, "Sec-WebSocket-Protocol", Subprotocol) {
		return bad(http.StatusBadRequest, "unsupported protocol version %q; this peer speaks %s", req.Header.Get("Sec-WebSocket-Protocol"), Subprotocol)
	}
	return key, nil
}

// ReadUpgradeResponse reads the server's answer to a request that carried
// key and checks it.
func ReadUpgradeResponse(br *bufio.Reader, key string) error {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return err
		}
		return &HandshakeError{Reason: "malformed HTTP response: " + err.Error()}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return &HandshakeError{Status: resp.StatusCode, Reason: strings.TrimSpace(string(body))}
	}
	bad := func(reason string) error { return &HandshakeError{Status: resp.StatusCode, Reason: reason} }
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return bad("101 without Upgrade: websocket")
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return bad("101 without Connection: Upgrade")
	case resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key):
		return bad("wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Protocol") != Subprotocol:
		return bad(fmt.Sprintf("server chose protocol %q, not %s", resp.Header.Get("Sec-WebSocket-Protocol"), Subprotocol))
	}
	return nil
}

// headerHasToken reports whether any comma-separated element of header name
// equals token, ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
