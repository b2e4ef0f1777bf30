package security

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestOpenSSLInterop checks the pieces an independent TLS stack must
// reproduce, against OpenSSL: it reads our identity file, completes a mutual
// TLS 1.3 handshake with ALPN against ServerConfig, computes the same
// exporter value Proof is built on, and derives the same fingerprint with the
// command the Fingerprint documentation gives.
func TestOpenSSLInterop(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed; it is the independent TLS implementation this test checks against")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	idPath := filepath.Join(dir, "client.pem")
	cid, err := LoadOrCreateIdentity(idPath)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("fingerprint", func(t *testing.T) {
		pub, err := exec.CommandContext(ctx, openssl, "x509", "-in", idPath, "-pubkey", "-noout").Output()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, openssl, "pkey", "-pubin", "-outform", "der")
		cmd.Stdin = bytes.NewReader(pub)
		der, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if Fingerprint(sha256.Sum256(der)) != cid.Fingerprint() {
			t.Fatal("the documented OpenSSL command gives a different fingerprint")
		}
	})

	t.Run("handshake", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		type result struct {
			exported []byte
			err      error
		}
		sid := newTestIdentity(t)
		done := make(chan result, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- result{err: err}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			tc := tls.Server(c, ServerConfig(sid, PinVerifier(cid.Fingerprint())))
			if err := tc.HandshakeContext(ctx); err != nil {
				done <- result{err: err}
				return
			}
			cs := tc.ConnectionState()
			if cs.NegotiatedProtocol != ALPN {
				done <- result{err: fmt.Errorf("ALPN %q", cs.NegotiatedProtocol)}
				return
			}
			// OpenSSL's s_client exports without a context, which TLS 1.3
			// defines to equal an empty context.
			exported, err := cs.ExportKeyingMaterial(proofLabel, nil, 32)
			tc.Write([]byte("bye\n"))
			done <- result{exported, err}
		}()
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", ln.Addr().String(), "-tls1_3",
			"-noservername", "-alpn", ALPN, "-cert", idPath, "-key", idPath,
			"-keymatexport", proofLabel, "-keymatexportlen", "32")
		cmd.Stdin = strings.NewReader("") // EOF: disconnect once connected
		out, err := cmd.CombinedOutput()
		res := <-done
		if res.err != nil {
			t.Fatalf("server: %v\nopenssl output:\n%s", res.err, out)
		}
		m := regexp.MustCompile(`Keying material: ([0-9A-Fa-f]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("openssl (%v) printed no keying material:\n%s", err, out)
		}
		if got := strings.ToLower(string(m[1])); got != hex.EncodeToString(res.exported) {
			t.Fatalf("OpenSSL exported %s, Go %x", got, res.exported)
		}
	})
}
