//go:build linux

package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/nearnet/nearnet/internal/proxytest"
)

func TestHTTPConnectTinyproxy(t *testing.T) {
	tgt := startTarget(t, 0)
	down := closedPort(t)
	addr := proxytest.Tinyproxy(t, testUser, testPass, tgt.port(), down)

	t.Run("tunnel", func(t *testing.T) {
		d := mustParse(t, proxyURL("http", testPass, addr))
		c, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchange(t, c)
	})

	t.Run("hostname target", func(t *testing.T) {
		// tinyproxy resolves it.
		d := mustParse(t, proxyURL("http", testPass, addr))
		c, err := d.DialContext(dialCtx(t), "tcp", "localhost:"+strconv.Itoa(tgt.port()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchange(t, c)
	})

	t.Run("target speaks first", func(t *testing.T) {
		// The target's greeting is read with the proxy's answer when both
		// are waiting in the socket; the connection must still yield it.
		// Let it arrive before the response is read, a few times at most.
		d := mustParse(t, proxyURL("http", testPass, addr))
		for range 5 {
			c, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
			if err != nil {
				t.Fatal(err)
			}
			<-tgt.greeted
			buffered := false
			if bc, ok := c.(*bufferedConn); ok {
				buffered = len(bc.buf) > 0
			}
			exchange(t, c)
			c.Close()
			if buffered {
				t.Log("the greeting came with the proxy's answer")
				return
			}
		}
		t.Log("the greeting never arrived with the proxy's answer; the buffered case is covered by TestHTTPBufferedBytes")
	})

	t.Run("wrong password", func(t *testing.T) {
		d := mustParse(t, proxyURL("http", "wrong-Pw", addr))
		_, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		e := wantKind(t, err, AuthFailed)
		if e.Status != 401 && e.Status != 407 {
			t.Errorf("status %d, want 401 (tinyproxy 1.11) or 407", e.Status)
		}
		t.Log(err)
	})

	t.Run("no credentials", func(t *testing.T) {
		d := mustParse(t, "http://"+addr)
		_, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		e := wantKind(t, err, AuthRequired)
		if e.Status != 407 {
			t.Errorf("status %d, want 407", e.Status)
		}
		t.Log(err)
	})

	t.Run("port not allowed", func(t *testing.T) {
		d := mustParse(t, proxyURL("http", testPass, addr))
		_, err := d.DialContext(dialCtx(t), "tcp", "127.0.0.1:"+strconv.Itoa(closedPort(t)))
		e := wantKind(t, err, TargetRefused)
		if e.Status != 403 {
			t.Errorf("status %d, want 403", e.Status)
		}
		t.Log(err)
	})

	t.Run("target down", func(t *testing.T) {
		d := mustParse(t, proxyURL("http", testPass, addr))
		_, err := d.DialContext(dialCtx(t), "tcp", "127.0.0.1:"+strconv.Itoa(down))
		e := wantKind(t, err, TargetRefused)
		if e.Status/100 != 5 {
			t.Errorf("status %d, want 5xx", e.Status)
		}
		t.Log(err)
	})

	t.Run("socks5 scheme at an HTTP proxy", func(t *testing.T) {
		// tinyproxy waits for the end of a request line that never comes.
		d := mustParse(t, proxyURL("socks5", testPass, addr))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := d.DialContext(ctx, "tcp", tgt.addr())
		wantKind(t, err, Timeout)
		if !strings.Contains(err.Error(), "did not answer the SOCKS5 greeting") {
			t.Errorf("error does not name the phase: %v", err)
		}
		t.Log(err)
	})

	t.Run("nettest", func(t *testing.T) {
		testConn(t, func(port int) *Dialer {
			return mustParse(t, proxyURL("http", testPass, proxytest.Tinyproxy(t, testUser, testPass, port)))
		})
	})
}

// testConn runs golang.org/x/net/nettest's net.Conn conformance tests on
// connections through the proxy that dialer gives for a target port, to a
// listener on 127.0.0.1.
func testConn(t *testing.T, dialer func(port int) *Dialer) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := dialer(ln.Addr().(*net.TCPAddr).Port)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c1, err = d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		c2, err = ln.Accept()
		if err != nil {
			c1.Close()
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

func TestSOCKS5Dante(t *testing.T) {
	tgt := startTarget(t, 0)
	down := closedPort(t)
	addr := proxytest.Dante(t, testUser, testPass, tgt.port(), down)

	for _, scheme := range []string{"socks5", "socks5h"} {
		t.Run(scheme+" tunnel", func(t *testing.T) {
			d := mustParse(t, proxyURL(scheme, testPass, addr))
			c, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exchange(t, c)
		})
		t.Run(scheme+" hostname target", func(t *testing.T) {
			// socks5 resolves localhost here, socks5h has Dante do it;
			// Dante's rules allow 127.0.0.1 only.
			d := mustParse(t, proxyURL(scheme, testPass, addr))
			c, err := d.DialContext(dialCtx(t), "tcp4", "localhost:"+strconv.Itoa(tgt.port()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exchange(t, c)
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		d := mustParse(t, proxyURL("socks5", "wrong-Pw", addr))
		_, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		e := wantKind(t, err, AuthFailed)
		if e.Phase != PhaseSOCKSAuth {
			t.Errorf("phase %v, want %v", e.Phase, PhaseSOCKSAuth)
		}
		t.Log(err)
	})

	t.Run("no credentials", func(t *testing.T) {
		d := mustParse(t, "socks5://"+addr)
		_, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		wantKind(t, err, AuthRequired)
		t.Log(err)
	})

	t.Run("not allowed", func(t *testing.T) {
		d := mustParse(t, proxyURL("socks5", testPass, addr))
		_, err := d.DialContext(dialCtx(t), "tcp", "127.0.0.1:"+strconv.Itoa(closedPort(t)))
		e := wantKind(t, err, TargetRefused)
		if e.Status != 2 {
			t.Errorf("reply %d, want 2 (not allowed by ruleset)", e.Status)
		}
		t.Log(err)
	})

	t.Run("target down", func(t *testing.T) {
		d := mustParse(t, proxyURL("socks5", testPass, addr))
		_, err := d.DialContext(dialCtx(t), "tcp", "127.0.0.1:"+strconv.Itoa(down))
		e := wantKind(t, err, TargetRefused)
		if e.Status != 5 {
			t.Errorf("reply %d, want 5 (connection refused)", e.Status)
		}
		t.Log(err)
	})

	t.Run("http scheme at a SOCKS5 proxy", func(t *testing.T) {
		d := mustParse(t, proxyURL("http", testPass, addr))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := d.DialContext(ctx, "tcp", tgt.addr())
		wantKindOf(t, err, ProtocolError, Timeout)
		t.Log(err)
	})

	t.Run("nettest", func(t *testing.T) {
		testConn(t, func(port int) *Dialer {
			return mustParse(t, proxyURL("socks5", testPass, proxytest.Dante(t, testUser, testPass, port)))
		})
	})
}

// TestTLSThroughProxies runs a TLS 1.3 handshake and an exchange with a
// TLS server through each kind of proxy: the tunnel carries it unchanged.
func TestTLSThroughProxies(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, func(c net.Conn) { io.Copy(c, c) })
	port := ln.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name  string
		start func(t testing.TB, user, pass string, ports ...int) string
	}{
		{"http", proxytest.Tinyproxy},
		{"socks5", proxytest.Dante},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := mustParse(t, proxyURL(tc.name, testPass, tc.start(t, testUser, testPass, port)))
			ctx := dialCtx(t)
			c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
			defer tc.Close()
			if err := tc.HandshakeContext(ctx); err != nil {
				t.Fatal(err)
			}
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			msg := []byte("over TLS through the proxy")
			if _, err := tc.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(tc, got); err != nil || string(got) != string(msg) {
				t.Fatalf("read %q, %v", got, err)
			}
		})
	}
}

// TestHTTPSProxy dials through an https:// proxy: tinyproxy behind a TLS
// terminator.
func TestHTTPSProxy(t *testing.T) {
	tgt := startTarget(t, 0)
	back := proxytest.Tinyproxy(t, testUser, testPass, tgt.port())
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, func(front net.Conn) {
		b, err := net.Dial("tcp", back)
		if err != nil {
			return
		}
		defer b.Close()
		done := make(chan struct{})
		go func() { io.Copy(b, front); b.(*net.TCPConn).CloseWrite(); close(done) }()
		io.Copy(front, b)
		front.Close()
		<-done
	})

	t.Run("tunnel", func(t *testing.T) {
		d := mustParse(t, proxyURL("https", testPass, ln.Addr().String()))
		d.tls.RootCAs = pool // test only: the system roots do not know this certificate
		c, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchange(t, c)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		d := mustParse(t, proxyURL("https", testPass, ln.Addr().String()))
		_, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		e := wantKind(t, err, ProxyUnreachable)
		if e.Phase != PhaseTLS {
			t.Errorf("phase %v", e.Phase)
		}
		t.Log(err)
	})
	t.Run("wrong password", func(t *testing.T) {
		d := mustParse(t, proxyURL("https", "wrong-Pw", ln.Addr().String()))
		d.tls.RootCAs = pool
		_, err := d.DialContext(dialCtx(t), "tcp", tgt.addr())
		wantKind(t, err, AuthFailed)
	})
	t.Run("silent", func(t *testing.T) {
		d := mustParse(t, proxyURL("https", testPass, silentServer(t)))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := d.DialContext(ctx, "tcp", tgt.addr())
		wantKind(t, err, Timeout)
		t.Log(err)
	})
}

func TestRank(t *testing.T) {
	// The target holds each connection 50 ms before greeting, so that
	// measurements overlap if nothing bounds them; it counts how many are
	// between accept and greeting at once.
	tgt := startTarget(t, 50*time.Millisecond)
	var good []string
	for range 3 {
		good = append(good, proxyURL("http", testPass, proxytest.Tinyproxy(t, testUser, testPass, tgt.port())))
	}
	down := proxyURL("http", testPass, "127.0.0.1:"+strconv.Itoa(closedPort(t)))
	bad := "ftp://u:" + testPass + "@h:1"
	wrongPw := strings.Replace(good[0], testPass, "wrong-Pw", 1)
	list := []string{good[0], down, good[1], bad, good[2], wrongPw, good[0], good[1]}

	probe := func(ctx context.Context, c net.Conn) error {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "hello from the target\n" {
			err = errors.New("wrong greeting")
		}
		return err
	}
	const concurrency = 2
	results, err := Rank(dialCtx(t), list, tgt.addr(), &RankOptions{Concurrency: concurrency, Timeout: 10 * time.Second, Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(list) {
		t.Fatalf("%d results for %d proxies", len(results), len(list))
	}
	for i, r := range results {
		t.Logf("%d: %s %v %v", i, r.Proxy, r.Latency, r.Err)
		noSecrets(t, r.Proxy)
		if r.Err != nil {
			noSecrets(t, r.Err.Error())
		}
	}
	for i, r := range results[:5] {
		if r.Err != nil || r.Latency <= 0 {
			t.Errorf("result %d: %v, latency %v; want a usable proxy", i, r.Err, r.Latency)
		}
		if i > 0 && r.Latency < results[i-1].Latency {
			t.Errorf("result %d is faster than %d", i, i-1)
		}
	}
	// The failures, in the order given.
	var e *Error
	if !errors.As(results[5].Err, &e) || e.Kind != ProxyUnreachable {
		t.Errorf("down proxy: %v", results[5].Err)
	}
	var ue *URLError
	if !errors.As(results[6].Err, &ue) {
		t.Errorf("bad URL: %v", results[6].Err)
	}
	if !errors.As(results[7].Err, &e) || e.Kind != AuthFailed {
		t.Errorf("wrong password: %v", results[7].Err)
	}
	if got := tgt.max(); got > concurrency {
		t.Errorf("%d measurements at once, want at most %d", got, concurrency)
	}
}
