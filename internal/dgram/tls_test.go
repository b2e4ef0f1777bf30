package dgram

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"testing"
	"time"
)

// TestTLSExporter derives both sides' keys from a real TLS 1.3 session, the
// way the root package does, and checks that they open each other's
// datagrams, and that a second flow on the same session gets other keys.
func TestTLSExporter(t *testing.T) {
	client, server := tlsPair(t)
	ma, mb := listenLoopback(t, nil), listenLoopback(t, nil)
	var prev *Keys
	for range 2 {
		// The dialer picks its session ID, the listener its own; each
		// tells the other on the reliable connection.
		sd, sl := NewSessionID(), NewSessionID()
		ctx := ExporterContext(sd, sl)
		cs, ss := client.ConnectionState(), server.ConnectionState()
		cm, err := cs.ExportKeyingMaterial(ExporterLabel, ctx, ExporterLength)
		if err != nil {
			t.Fatal(err)
		}
		sm, err := ss.ExportKeyingMaterial(ExporterLabel, ctx, ExporterLength)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := KeysFromExporter(cm, true)
		if err != nil {
			t.Fatal(err)
		}
		kl, err := KeysFromExporter(sm, false)
		if err != nil {
			t.Fatal(err)
		}
		if kd.Send != kl.Recv || kd.Recv != kl.Send || kd.Send == kd.Recv {
			t.Fatal("the two sides' keys do not pair up")
		}
		if prev != nil && (prev.Send == kd.Send || prev.Recv == kd.Recv) {
			t.Fatal("a second flow on the same TLS session got the same keys")
		}
		prev = kd
		d, err := ma.NewFlow(FlowConfig{LocalSession: sd, RemoteSession: sl, RemoteAddr: mb.LocalAddr(), Keys: kd})
		if err != nil {
			t.Fatal(err)
		}
		l, err := mb.NewFlow(FlowConfig{LocalSession: sl, RemoteSession: sd, Keys: kl})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Send([]byte("from the dialer")); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, l); !bytes.Equal(got, []byte("from the dialer")) {
			t.Fatalf("got %q", got)
		}
		if err := l.Send([]byte("from the listener")); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, d); !bytes.Equal(got, []byte("from the listener")) {
			t.Fatalf("got %q", got)
		}
		d.Close()
		l.Close()
	}
}

// tlsPair returns the two ends of a TLS 1.3 connection over loopback TCP.
func tlsPair(t *testing.T) (client, server *tls.Conn) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		server = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		done <- server.Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client = tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
