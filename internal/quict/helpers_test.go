package quict

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"testing"
	"time"

	"github.com/nearnet/nearnet/security"
)

var (
	serverID = mustIdentity()
	clientID = mustIdentity()
)

func mustIdentity() *security.Identity {
	id, err := security.NewIdentity()
	if err != nil {
		panic(err)
	}
	return id
}

func serverTLS(verify func(*x509.Certificate) error) *tls.Config {
	return security.ServerConfig(serverID, verify)
}

func clientTLS(verify func(*x509.Certificate) error) *tls.Config {
	return security.ClientConfig(clientID, verify)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair is a connected dialer (d) and listener side (l) on 127.0.0.1, each
// with its control stream ready: the dialer's first byte was read.
type pair struct {
	ln   *Listener
	d, l *Conn
}

func (p *pair) close() {
	p.d.Close()
	p.l.Close()
	p.ln.Close()
	<-p.d.Done()
	<-p.l.Done()
}

func newPair(t testing.TB, lconf, dconf *Config) *pair {
	t.Helper()
	p, err := makePair(testCtx(t), lconf, dconf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

func makePair(ctx context.Context, lconf, dconf *Config) (*pair, error) {
	ln, err := Listen("127.0.0.1:0", serverTLS(nil), lconf)
	if err != nil {
		return nil, err
	}
	d, err := Dial(ctx, ln.Addr().String(), clientTLS(nil), dconf)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if _, err := d.Control().Write([]byte{'!'}); err != nil {
		d.Close()
		ln.Close()
		return nil, err
	}
	l, err := ln.Accept(ctx)
	if err != nil {
		d.Close()
		ln.Close()
		return nil, err
	}
	var b [1]byte
	if _, err := io.ReadFull(l.Control(), b[:]); err != nil {
		d.Close()
		ln.Close()
		return nil, err
	}
	return &pair{ln: ln, d: d, l: l}, nil
}

// streamPair opens a stream from a to b and returns both ends, the
// opener's first byte already read.
func streamPair(ctx context.Context, a, b *Conn) (*Stream, *Stream, error) {
	sa, err := a.OpenStream(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := sa.Write([]byte{'!'}); err != nil {
		return nil, nil, err
	}
	sb, err := b.AcceptStream(ctx)
	if err != nil {
		return nil, nil, err
	}
	var one [1]byte
	if _, err := io.ReadFull(sb, one[:]); err != nil {
		return nil, nil, err
	}
	return sa, sb, nil
}
