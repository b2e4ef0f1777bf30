package security

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"testing"
)

// exchangeProofs is what the session layer does after the handshake: send
// our proof, read the peer's and verify it.
func exchangeProofs(c *tls.Conn, key Key, client bool) error {
	cs := c.ConnectionState()
	mine, err := Proof(key, &cs, client)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(mine)
		errc <- err
	}()
	theirs := make([]byte, len(mine))
	if _, err := io.ReadFull(c, theirs); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	return VerifyProof(key, &cs, !client, theirs)
}

// proofPair runs a real TLS 1.3 handshake over loopback and exchanges proofs
// with serverKey and clientKey.
func proofPair(t *testing.T, serverKey, clientKey Key) (srv, cli side, srvErr, cliErr error) {
	t.Helper()
	srv, cli = handshake(t, ServerConfig(newTestIdentity(t), nil), ClientConfig(newTestIdentity(t), nil))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake: server %v, client %v", srv.err, cli.err)
	}
	done := make(chan error, 1)
	go func() { done <- exchangeProofs(srv.conn, serverKey, false) }()
	cliErr = exchangeProofs(cli.conn, clientKey, true)
	return srv, cli, <-done, cliErr
}

func TestProofSameKey(t *testing.T) {
	key, _ := GenerateKey()
	srv, cli, srvErr, cliErr := proofPair(t, key, key)
	if srvErr != nil || cliErr != nil {
		t.Fatalf("server %v, client %v", srvErr, cliErr)
	}

	// Both ends compute the same proof for each role, and the roles differ.
	scs, ccs := srv.conn.ConnectionState(), cli.conn.ConnectionState()
	sc, _ := Proof(key, &scs, true)
	cc, _ := Proof(key, &ccs, true)
	ss, _ := Proof(key, &scs, false)
	if !bytes.Equal(sc, cc) || len(sc) != 32 {
		t.Fatal("the two ends disagree on the client's proof")
	}
	if bytes.Equal(sc, ss) {
		t.Fatal("client and server proofs are equal")
	}
	// A proof cannot be reflected: the server's own proof sent back to it,
	// or the client's proof presented as a server's, does not verify.
	if err := VerifyProof(key, &scs, true, ss); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("reflected server proof: err = %v, want ErrKeyMismatch", err)
	}
	if err := VerifyProof(key, &ccs, false, cc); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("client proof as server proof: err = %v, want ErrKeyMismatch", err)
	}

	// Nor replayed on another connection.
	other, _, _, _ := proofPair(t, key, key)
	ocs := other.conn.ConnectionState()
	if err := VerifyProof(key, &ocs, true, sc); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("replayed proof: err = %v, want ErrKeyMismatch", err)
	}
}

func TestProofDifferentKeys(t *testing.T) {
	a, _ := GenerateKey()
	b, _ := GenerateKey()
	_, _, srvErr, cliErr := proofPair(t, a, b)
	if !errors.Is(srvErr, ErrKeyMismatch) || !errors.Is(cliErr, ErrKeyMismatch) {
		t.Fatalf("server %v, client %v; want ErrKeyMismatch on both", srvErr, cliErr)
	}
	if ErrKeyMismatch.Error() != "pre-shared key mismatch: the peer proved a different key" {
		t.Errorf("ErrKeyMismatch = %q", ErrKeyMismatch)
	}
}

func TestProofRefuses(t *testing.T) {
	key, _ := GenerateKey()
	if _, err := Proof(Key{}, &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}, true); err == nil {
		t.Error("Proof accepted the zero key")
	}
	if _, err := Proof(key, &tls.ConnectionState{Version: tls.VersionTLS12, HandshakeComplete: true}, true); err == nil {
		t.Error("Proof accepted TLS 1.2")
	}
	if _, err := Proof(key, &tls.ConnectionState{Version: tls.VersionTLS13}, true); err == nil {
		t.Error("Proof accepted an unfinished handshake")
	}
	if err := VerifyProof(key, nil, true, make([]byte, 32)); err == nil || errors.Is(err, ErrKeyMismatch) {
		t.Errorf("VerifyProof(nil state) = %v, want an error other than ErrKeyMismatch", err)
	}
}
