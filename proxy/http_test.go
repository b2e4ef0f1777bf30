package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTPBufferedBytes checks, against a proxy that sends its answer and
// the target's first bytes in one write, that those bytes are read from
// the connection first, then the rest.
func TestHTTPBufferedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		c.Read(buf) // the request
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\nfirst bytes|")
		io.Copy(c, c)
	}()
	d := mustParse(t, "http://"+ln.Addr().String())
	c, err := d.DialContext(dialCtx(t), "tcp", "peer.example:443")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(); <-done }()
	if _, err := io.WriteString(c, "echoed"); err != nil {
		t.Fatal(err)
	}
	want := "first bytes|echoed"
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

// TestHTTPAnswers runs the CONNECT exchange against fixed answers.
func TestHTTPAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		creds        bool
		kind         Kind
		status       int
	}{
		{"200", "HTTP/1.1 200 OK\r\n\r\n", false, 0, 0},
		{"204 HTTP/1.0", "HTTP/1.0 204 No Content\r\n\r\n", false, 0, 0},
		{"407 no creds", "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\n\r\n", false, AuthRequired, 407},
		{"407 creds", "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", true, AuthFailed, 407},
		{"403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!", true, TargetRefused, 403},
		{"502", "HTTP/1.1 502 Bad Gateway\r\n\r\n", true, TargetRefused, 502},
		{"301", "HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n", true, TargetRefused, 301},
		{"101", "HTTP/1.1 101 Switching Protocols\r\n\r\n", true, ProtocolError, 101},
		{"too many 1xx", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 20), true, ProtocolError, 0},
		{"socks answer", "\x05\xff", true, ProtocolError, 0},
		{"garbage", "hello there\r\n\r\n", true, ProtocolError, 0},
		{"closed", "", true, ProtocolError, 0},
		{"truncated", "HTTP/1.1 200 OK\r\nVia: x", true, ProtocolError, 0},
		{"huge header", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", true, ProtocolError, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "http://127.0.0.1:3128"
			if tc.creds {
				raw = proxyURL("http", testPass, "127.0.0.1:3128")
			}
			d := mustParse(t, raw)
			c, e := d.connectHTTP(&scriptConn{r: strings.NewReader(tc.answer)}, "peer.example:443")
			if tc.kind == 0 {
				if e != nil {
					t.Fatalf("%v", e)
				}
				c.Close()
				return
			}
			if e == nil {
				t.Fatal("no error")
			}
			got := wantKind(t, e, tc.kind)
			if got.Status != tc.status {
				t.Errorf("status %d, want %d", got.Status, tc.status)
			}
			t.Log(e)
		})
	}
}

func TestHTTPRequest(t *testing.T) {
	d := mustParse(t, proxyURL("http", testPass, "127.0.0.1:3128"))
	got := string(d.connectRequest("[::1]:443"))
	want := "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic " + basicToken(testPass) + "\r\n\r\n"
	if got != want {
		t.Errorf("request\n%q, want\n%q", got, want)
	}
	d = mustParse(t, "http://127.0.0.1:3128")
	if got := string(d.connectRequest("a.b:1")); strings.Contains(got, "Proxy-Authorization") {
		t.Errorf("request without credentials has them: %q", got)
	}
}

// TestUnreachableAndSilent covers a proxy that is down and one that
// accepts but never answers, for each scheme.
func TestUnreachableAndSilent(t *testing.T) {
	for _, scheme := range []string{"http", "socks5"} {
		t.Run(scheme+" down", func(t *testing.T) {
			d := mustParse(t, proxyURL(scheme, testPass, "127.0.0.1:"+strconv.Itoa(closedPort(t))))
			_, err := d.DialContext(dialCtx(t), "tcp", "127.0.0.1:9")
			e := wantKind(t, err, ProxyUnreachable)
			if e.Phase != PhaseConnect {
				t.Errorf("phase %v: %v", e.Phase, err)
			}
			t.Log(err)
		})
		t.Run(scheme+" silent", func(t *testing.T) {
			d := mustParse(t, proxyURL(scheme, testPass, silentServer(t)))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			begin := time.Now()
			_, err := d.DialContext(ctx, "tcp", "127.0.0.1:9")
			if took := time.Since(begin); took > 5*time.Second {
				t.Errorf("dial took %v with a 300ms context", took)
			}
			e := wantKind(t, err, Timeout)
			want := map[string]string{"http": "did not answer the CONNECT request within", "socks5": "did not answer the SOCKS5 greeting within"}[scheme]
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("not a net.Error with Timeout: %v", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("does not wrap context.DeadlineExceeded: %v", err)
			}
			_ = e
			t.Log(err)
		})
		t.Run(scheme+" canceled", func(t *testing.T) {
			d := mustParse(t, proxyURL(scheme, testPass, silentServer(t)))
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			_, err := d.DialContext(ctx, "tcp", "127.0.0.1:9")
			wantKind(t, err, Canceled)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("does not wrap context.Canceled: %v", err)
			}
			t.Log(err)
		})
		t.Run(scheme+" forward timeout", func(t *testing.T) {
			// No deadline in ctx: the forward dialer's Timeout bounds the dial.
			u, err := url.Parse(proxyURL(scheme, testPass, silentServer(t)))
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(u, &net.Dialer{Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
			wantKind(t, err, Timeout)
			t.Log(err)
		})
	}
}
