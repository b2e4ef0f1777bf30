package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/proxytest"
)

const (
	testUser = proxytest.User
	testPass = proxytest.Password
)

// target is a TCP server on 127.0.0.1 that greets each connection with a
// line and then echoes what it reads. It counts the connections that are
// between their accept and their greeting.
type target struct {
	ln       net.Listener
	greeting string
	hold     time.Duration // wait this long before greeting

	mu          sync.Mutex
	inFlight    int // guarded by mu
	maxInFlight int // guarded by mu
	accepted    int // guarded by mu
	greeted     chan struct{}
	wg          sync.WaitGroup
}

func startTarget(t testing.TB, hold time.Duration) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &target{ln: ln, greeting: "hello from the target\n", hold: hold, greeted: make(chan struct{}, 100)}
	var conns sync.Map
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		s.wg.Wait()
	})
	return s
}

func (s *target) serve(c net.Conn) {
	s.mu.Lock()
	s.accepted++
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()
	time.Sleep(s.hold)
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	if _, err := io.WriteString(c, s.greeting); err != nil {
		return
	}
	select {
	case s.greeted <- struct{}{}:
	default:
	}
	io.Copy(c, c)
}

func (s *target) addr() string { return s.ln.Addr().String() }

func (s *target) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *target) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// closedPort returns a port of 127.0.0.1 on which nothing listens.
func closedPort(t testing.TB) int { return proxytest.FreePort(t) }

// exchange checks a connection to a target: the greeting arrives, and
// bytes written come back.
func exchange(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "hello from the target\n" {
		t.Fatalf("greeting: %q, %v", line, err)
	}
	msg := strings.Repeat("ping through the proxy ", 1000)
	errc := make(chan error, 1)
	go func() { _, err := io.WriteString(c, msg); errc <- err }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo differs")
	}
}

// silentServer accepts connections and never answers, like a proxy that
// hangs.
func silentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// proxyURL is scheme://testUser:pass@addr.
func proxyURL(scheme, pass, addr string) string {
	if pass == "" {
		return scheme + "://" + addr
	}
	u := url.URL{Scheme: scheme, User: url.UserPassword(testUser, pass), Host: addr}
	return u.String()
}

func basicToken(pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(testUser + ":" + pass))
}

func mustParse(t testing.TB, raw string) *Dialer {
	t.Helper()
	d, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantKind checks that err is an *Error of kind and that its text holds
// neither the password nor the Basic token.
func wantKind(t testing.TB, err error, kind Kind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind %v, want %v: %v", e.Kind, kind, err)
	}
	noSecrets(t, err.Error())
	return e
}

func noSecrets(t testing.TB, text string) {
	t.Helper()
	for _, s := range []string{testPass, "wrong-Pw", basicToken(testPass), basicToken("wrong-Pw")} {
		if strings.Contains(text, s) {
			t.Fatalf("text holds a secret %q: %s", s, text)
		}
	}
}

func dialCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// scriptConn is a net.Conn that reads a fixed answer and swallows writes.
type scriptConn struct {
	net.Conn // nil: only Read, Write and Close are called
	r        io.Reader
	wrote    strings.Builder
}

func (c *scriptConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *scriptConn) Write(p []byte) (int, error) { return c.wrote.Write(p) }

func (c *scriptConn) Close() error { return nil }

// wantKindOf is wantKind for any of kinds.
func wantKindOf(t testing.TB, err error, kinds ...Kind) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	for _, k := range kinds {
		if e.Kind == k {
			noSecrets(t, err.Error())
			return e
		}
	}
	t.Fatalf("kind %v, want one of %v: %v", e.Kind, kinds, err)
	return nil
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nearnet proxy test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// serve accepts on ln until it is closed and runs handle for each
// connection; cleanup closes ln and every connection and waits.
func serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() { mu.Lock(); delete(conns, c); mu.Unlock(); c.Close() }()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}
