package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigsHandshake(t *testing.T) {
	sid, cid := newTestIdentity(t), newTestIdentity(t)
	srv, cli := handshake(t, ServerConfig(sid, nil), ClientConfig(cid, nil))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("server %v, client %v", srv.err, cli.err)
	}
	for name, cs := range map[string]tls.ConnectionState{"server": srv.conn.ConnectionState(), "client": cli.conn.ConnectionState()} {
		if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != ALPN || cs.DidResume {
			t.Errorf("%s: version %x, ALPN %q, resumed %v", name, cs.Version, cs.NegotiatedProtocol, cs.DidResume)
		}
	}
	scs, ccs := srv.conn.ConnectionState(), cli.conn.ConnectionState()
	if FingerprintOf(scs.PeerCertificates[0]) != cid.Fingerprint() || FingerprintOf(ccs.PeerCertificates[0]) != sid.Fingerprint() {
		t.Error("peers saw the wrong certificates")
	}
}

func TestConfigsRefuse(t *testing.T) {
	sid, cid := newTestIdentity(t), newTestIdentity(t)

	t.Run("no client certificate", func(t *testing.T) {
		bare := ClientConfig(cid, nil)
		bare.Certificates = nil
		srv, cli := handshake(t, ServerConfig(sid, nil), bare)
		if srv.err == nil {
			t.Fatal("server accepted a client without a certificate")
		}
		if cli.err == nil {
			if err := readErr(cli.conn); err == nil {
				t.Fatal("client saw no error")
			}
		}
	})
	t.Run("TLS 1.2", func(t *testing.T) {
		old := ClientConfig(cid, nil)
		old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		srv, cli := handshake(t, ServerConfig(sid, nil), old)
		if srv.err == nil || cli.err == nil {
			t.Fatalf("TLS 1.2: server %v, client %v", srv.err, cli.err)
		}
	})
	t.Run("other ALPN", func(t *testing.T) {
		h2 := ClientConfig(cid, nil)
		h2.NextProtos = []string{"h2"}
		srv, cli := handshake(t, ServerConfig(sid, nil), h2)
		if srv.err == nil || cli.err == nil {
			t.Fatalf("ALPN h2: server %v, client %v", srv.err, cli.err)
		}
		mustContain(t, cli.err.Error(), "no application protocol")
	})
}

func TestPinVerifier(t *testing.T) {
	sid, cid, stranger := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)

	srv, cli := handshake(t, ServerConfig(sid, PinVerifier(cid.Fingerprint())), ClientConfig(cid, PinVerifier(sid.Fingerprint())))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("pinned peers: server %v, client %v", srv.err, cli.err)
	}

	// The server does not know the client.
	srv, cli = handshake(t, ServerConfig(sid, PinVerifier(cid.Fingerprint())), ClientConfig(stranger, nil))
	wantUntrusted(t, srv.err, stranger.Fingerprint())
	if cli.err != nil {
		t.Fatalf("client handshake: %v (TLS 1.3 clients finish before the server checks them)", cli.err)
	}
	mustContain(t, errString(readErr(cli.conn)), "bad certificate")

	// The client does not know the server.
	srv, cli = handshake(t, ServerConfig(stranger, nil), ClientConfig(cid, PinVerifier(sid.Fingerprint())))
	wantUntrusted(t, cli.err, stranger.Fingerprint())
	if srv.err == nil {
		t.Error("server saw no error when the client rejected it")
	}

	if err := PinVerifier()(sid.TLSCertificate().Leaf); err == nil {
		t.Error("an empty pin set accepted a certificate")
	}
}

func wantUntrusted(t *testing.T, err error, fp Fingerprint) {
	t.Helper()
	var ue *UntrustedPeerError
	if !errors.As(err, &ue) || ue.Fingerprint != fp {
		t.Fatalf("err = %v, want an *UntrustedPeerError for %v", err, fp)
	}
	if ue.Err == nil {
		mustContain(t, err.Error(), "peer presented "+fp.String()+"; not in the trusted set: add it with --trust or to the known-peers file")
	}
}

func TestKnownPeersVerifierTOFU(t *testing.T) {
	sid, first, second := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	path := filepath.Join(t.TempDir(), "known_peers")
	kp, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := handshake(t, ServerConfig(sid, KnownPeersVerifier(kp, true)), ClientConfig(first, nil))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("TOFU: server %v, client %v", srv.err, cli.err)
	}
	if !kp.Contains(first.Fingerprint()) {
		t.Fatal("TOFU did not add the peer")
	}
	if data, _ := os.ReadFile(path); string(data) != first.Fingerprint().String()+"\n" {
		t.Fatalf("known-peers file = %q", data)
	}

	// A later run without TOFU trusts the remembered peer and no other.
	reloaded, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	strict := ServerConfig(sid, KnownPeersVerifier(reloaded, false))
	if srv, _ := handshake(t, strict, ClientConfig(first, nil)); srv.err != nil {
		t.Fatalf("remembered peer: %v", srv.err)
	}
	srv, _ = handshake(t, strict, ClientConfig(second, nil))
	wantUntrusted(t, srv.err, second.Fingerprint())
	if reloaded.Contains(second.Fingerprint()) {
		t.Fatal("strict verifier added a peer")
	}
}

func TestKnownPeersVerifierTOFUFailsClosed(t *testing.T) {
	// The known-peers path is a directory, so the peer cannot be recorded.
	dir := t.TempDir()
	kp, err := LoadKnownPeers(filepath.Join(dir, "known_peers"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "known_peers"), 0o700); err != nil {
		t.Fatal(err)
	}
	srv, _ := handshake(t, ServerConfig(newTestIdentity(t), KnownPeersVerifier(kp, true)), ClientConfig(newTestIdentity(t), nil))
	if srv.err == nil || !strings.Contains(srv.err.Error(), "on first use") {
		t.Fatalf("server err = %v, want a failure to record the peer", srv.err)
	}
}

func TestRootsVerifier(t *testing.T) {
	ca := newTestCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	sid, member, selfSigned := newTestIdentity(t), ca.issue(t), newTestIdentity(t)

	srv, cli := handshake(t, ServerConfig(sid, RootsVerifier(roots)), ClientConfig(member, nil))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("CA-issued peer: server %v, client %v", srv.err, cli.err)
	}
	srv, _ = handshake(t, ServerConfig(sid, RootsVerifier(roots)), ClientConfig(selfSigned, nil))
	var ue *UntrustedPeerError
	var ua x509.UnknownAuthorityError
	if !errors.As(srv.err, &ue) || ue.Fingerprint != selfSigned.Fingerprint() || !errors.As(srv.err, &ua) {
		t.Fatalf("self-signed peer: err = %v, want *UntrustedPeerError wrapping x509.UnknownAuthorityError", srv.err)
	}
	mustContain(t, srv.err.Error(), selfSigned.Fingerprint().String(), "not issued by a trusted root")

	// A nil pool trusts nothing rather than the system roots.
	srv, _ = handshake(t, ServerConfig(sid, RootsVerifier(nil)), ClientConfig(member, nil))
	if !errors.As(srv.err, &ue) {
		t.Fatalf("nil roots: err = %v, want *UntrustedPeerError", srv.err)
	}
}
