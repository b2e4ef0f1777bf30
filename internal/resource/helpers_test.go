package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// transports are the streams the transfer tests run over: an in-process
// pipe (synchronous, no buffering), real TCP on loopback, and TLS 1.3 over
// that (what nearnet streams run on).
var transports = []struct {
	name string
	pair func(t testing.TB) (sender, receiver net.Conn)
}{
	{"pipe", func(t testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", tcpPair},
	{"tls", tlsPair},
}

var testCert = sync.OnceValue(func() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
})

// tlsPair is a TLS 1.3 connection over loopback TCP; the sender is the
// client.
func tlsPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	a, b := tcpPair(t)
	client := tls.Client(a, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{testCert()}, MinVersion: tls.VersionTLS13})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	err := client.Handshake()
	if serr := <-errc; err == nil {
		err = serr
	}
	if err != nil {
		a.Close()
		b.Close()
		t.Fatal(err)
	}
	return client, server
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		a.Close()
		t.Fatal(r.err)
	}
	return a, r.c
}

// outcome is what both sides of one transfer returned.
type outcome struct {
	sendErr, recvErr error
	sent             Sent
	rcv              Received
	incoming         *Incoming
	sendProg         []int64 // done values, in order
	recvProg         []int64
}

// transfer runs Send on s and ReadOffer+Accept on r at once; each side
// closes its own end when its call returns, as an application would.
func transfer(t testing.TB, s, r net.Conn, offer Offer, src io.Reader, dir string, opts *AcceptOptions) outcome {
	t.Helper()
	return transferHook(t, s, r, offer, src, dir, opts, nil)
}

// transferHook is transfer with hook, if not nil, called on the offer
// before Accept (to inject a failing writer).
func transferHook(t testing.TB, s, r net.Conn, offer Offer, src io.Reader, dir string, opts *AcceptOptions, hook func(*Incoming)) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out outcome
	var wg sync.WaitGroup
	wg.Go(func() {
		defer s.Close()
		out.sent, out.sendErr = Send(ctx, s, offer, src, func(done, total int64) {
			checkTotal(t, "sender", total, offer.Size)
			out.sendProg = append(out.sendProg, done)
		})
	})
	func() {
		defer r.Close()
		in, err := ReadOffer(ctx, r)
		if err != nil {
			out.recvErr = err
			return
		}
		out.incoming = in
		if hook != nil {
			hook(in)
		}
		out.rcv, out.recvErr = in.Accept(ctx, dir, opts, func(done, total int64) {
			checkTotal(t, "receiver", total, offer.Size)
			out.recvProg = append(out.recvProg, done)
		})
	}()
	wg.Wait()
	return out
}

func checkTotal(t testing.TB, side string, got, want int64) {
	if got != want {
		t.Errorf("%s progress total = %d, want %d", side, got, want)
	}
}

// checkProgress checks that done values start at from, never decrease and
// end at size.
func checkProgress(t *testing.T, side string, prog []int64, from, size int64) {
	t.Helper()
	if len(prog) == 0 {
		t.Errorf("%s: no progress reported", side)
		return
	}
	if prog[0] != from {
		t.Errorf("%s: first progress %d, want %d", side, prog[0], from)
	}
	for i := 1; i < len(prog); i++ {
		if prog[i] < prog[i-1] {
			t.Errorf("%s: progress went back from %d to %d", side, prog[i-1], prog[i])
		}
	}
	if last := prog[len(prog)-1]; last != size {
		t.Errorf("%s: last progress %d, want %d", side, last, size)
	}
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint64())
	}
	return b
}

// sourceFile writes content to a file outside dir and opens it.
func sourceFile(t *testing.T, content []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "source")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// listDir returns every path under dir, '/'-separated, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

func partialsIn(t *testing.T, dir string) []string {
	t.Helper()
	var ps []string
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(filepath.Base(n), partialPrefix) {
			ps = append(ps, n)
		}
	}
	return ps
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: content differs (%d bytes, want %d)", path, len(got), len(want))
	}
}

// countConn counts the bytes written through it.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// cutConn closes the connection once limit bytes have been written, as a
// link that breaks mid-transfer.
type cutConn struct {
	net.Conn
	limit int64
	n     int64
}

var errCut = errors.New("test: link cut")

func (c *cutConn) Write(b []byte) (int, error) {
	if c.n+int64(len(b)) <= c.limit {
		n, err := c.Conn.Write(b)
		c.n += int64(n)
		return n, err
	}
	n, _ := c.Conn.Write(b[:c.limit-c.n])
	c.n += int64(n)
	c.Conn.Close()
	return n, errCut
}

// flipConn inverts the byte at read offset at, as corruption in flight
// that the transport did not catch.
type flipConn struct {
	net.Conn
	at, n int64
}

func (c *flipConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.at >= c.n && c.at < c.n+int64(n) {
		b[c.at-c.n] ^= 0xff
	}
	c.n += int64(n)
	return n, err
}

// genReader is size bytes of deterministic content that depend on the
// offset, so a test can send gigabytes without storing them: a random
// pattern of odd length repeated, which no buffer size divides, so a
// byte sent from the wrong offset changes the hash. It fills by copy,
// which stays fast under the race detector.
type genReader struct{ size int64 }

const genPeriod = 1<<20 + 7

var genPattern = randomBytes(genPeriod, 42)

func (g genReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= g.size {
		return 0, io.EOF
	}
	n := len(p)
	if rem := g.size - off; int64(n) > rem {
		n = int(rem)
	}
	for i := 0; i < n; {
		i += copy(p[i:n], genPattern[(off+int64(i))%genPeriod:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
