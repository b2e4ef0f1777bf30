package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxResponseHeader bounds what is read of a CONNECT response (interim 1xx
// responses included), so a broken proxy cannot make us buffer without end.
const maxResponseHeader = 64 << 10

// maxInterim bounds the 1xx responses skipped before the final one.
const maxInterim = 8

var errHeaderTooLarge = errors.New("response header larger than 64 KiB")

// connectHTTP asks the HTTP proxy on c for a tunnel to target.
func (d *Dialer) connectHTTP(c net.Conn, target string) (net.Conn, *Error) {
	start := time.Now()
	ioFail := func(err error) *Error {
		e := d.fail(ProtocolError, PhaseHTTPConnect, target, 0, err)
		e.io, e.start = true, start
		return e
	}
	if _, err := c.Write(d.connectRequest(target)); err != nil {
		return nil, ioFail(err)
	}
	resp, rest, err := readConnectResponse(c)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("it closed the connection before a complete response (%w)", err)
		}
		return nil, ioFail(err)
	}
	if kind, err := d.classifyStatus(resp); kind != 0 {
		return nil, d.fail(kind, PhaseHTTPConnect, target, resp.StatusCode, err)
	}
	if len(rest) > 0 {
		return &bufferedConn{Conn: c, buf: rest}, nil
	}
	return c, nil
}

// connectRequest is the CONNECT request for target (RFC 9110 section
// 9.3.6): the authority form in the request line and the Host header.
func (d *Dialer) connectRequest(target string) []byte {
	b := make([]byte, 0, 128+len(d.auth))
	b = fmt.Appendf(b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if d.auth != "" {
		b = fmt.Appendf(b, "Proxy-Authorization: %s\r\n", d.auth)
	}
	return append(b, "\r\n"...)
}

// readConnectResponse reads the proxy's final answer to a CONNECT from r,
// skipping interim 1xx responses. rest holds the bytes read past the
// response, which belong to the tunnel. The body of the response is not
// read: after a 2xx there is none, and after anything else the connection
// is abandoned.
func readConnectResponse(r io.Reader) (resp *http.Response, rest []byte, err error) {
	lr := &io.LimitedReader{R: r, N: maxResponseHeader}
	br := bufio.NewReaderSize(lr, 4096)
	for range maxInterim + 1 {
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			if lr.N == 0 {
				err = errHeaderTooLarge
			}
			return nil, nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, nil, fmt.Errorf("status %d instead of a final response", resp.StatusCode)
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n) // cannot fail: n bytes are buffered
		rest = append([]byte(nil), b...)
	}
	return resp, rest, nil
}

// classifyStatus turns a final CONNECT response into a Kind and cause, or
// 0 for a tunnel.
func (d *Dialer) classifyStatus(resp *http.Response) (Kind, error) {
	code := resp.StatusCode
	status := fmt.Sprintf("HTTP %d %s", code, strconv.Quote(reason(resp)))
	switch {
	case code >= 200 && code <= 299:
		return 0, nil
	case code == http.StatusProxyAuthRequired, code == http.StatusUnauthorized:
		// tinyproxy 1.11 answers wrong credentials with 401, not 407.
		if d.creds {
			return AuthFailed, errors.New(status)
		}
		return AuthRequired, errors.New(status)
	case code < 200:
		return ProtocolError, fmt.Errorf("%s instead of 2xx", status)
	case code == http.StatusForbidden, code == http.StatusMethodNotAllowed:
		return TargetRefused, fmt.Errorf("%s: the proxy does not allow a tunnel there", status)
	case code >= 500:
		return TargetRefused, fmt.Errorf("%s: the proxy could not connect to it", status)
	default:
		return TargetRefused, errors.New(status)
	}
}

// reason is the reason phrase of resp, at most 80 bytes.
func reason(resp *http.Response) string {
	r := resp.Status
	if len(r) >= 4 && r[3] == ' ' {
		r = r[4:]
	} else {
		r = ""
	}
	if len(r) > 80 {
		r = r[:80] + "..."
	}
	return r
}

// bufferedConn is a net.Conn whose reads return buf before the conn's own
// bytes: the target's first bytes that arrived with the proxy's answer.
type bufferedConn struct {
	net.Conn
	mu  sync.Mutex // guards buf
	buf []byte
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}
