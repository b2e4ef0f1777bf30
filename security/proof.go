package security

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
)

// proofLabel is the TLS exporter label of the pre-shared key proof.
const proofLabel = "EXPORTER-nearnet-psk-proof"

// Proof returns this side's proof that it holds key, bound to the TLS
// connection described by cs. client says whose proof it is: the TLS
// client's (true) or the TLS server's (false). The sender passes its own
// role; the receiver passes the peer's role to [VerifyProof].
//
// Go's crypto/tls has no PSK cipher suites, so the key is proved inside an
// ordinary certificate-authenticated TLS 1.3 connection:
//
//	exported = TLS-Exporter(label = "EXPORTER-nearnet-psk-proof",
//	                        context = "client" or "server", length = 32)
//	proof    = HMAC-SHA256(key = the 32 key bytes, message = exported)
//
// TLS-Exporter is the exporter of RFC 8446, section 7.5; the context is the
// 6 ASCII bytes of the prover's role, with no terminator. The proof is 32
// bytes. Because the exporter secret is unique to each TLS session, a proof
// cannot be replayed on another connection; because the two roles use
// different contexts, a proof cannot be reflected back to its sender. The
// proof reveals nothing about the key to a peer that lacks it.
//
// On Apple platforms the same value is
// sec_protocol_metadata_create_secret_with_context(metadata, 26,
// "EXPORTER-nearnet-psk-proof", 6, "client" or "server", 32) fed to CryptoKit's
// HMAC<SHA256>.authenticationCode(for:using: SymmetricKey(data: key)).
//
// cs must be the state of a completed TLS 1.3 handshake; the all-zero Key is
// refused.
func Proof(key Key, cs *tls.ConnectionState, client bool) ([]byte, error) {
	if key == (Key{}) {
		return nil, errors.New("security: the pre-shared key is all zeros (unset); generate one with GenerateKey")
	}
	if cs == nil || !cs.HandshakeComplete {
		return nil, errors.New("security: pre-shared key proof needs a completed TLS handshake")
	}
	if cs.Version != tls.VersionTLS13 {
		return nil, fmt.Errorf("security: pre-shared key proof needs TLS 1.3, the connection uses %s", tls.VersionName(cs.Version))
	}
	context := "server"
	if client {
		context = "client"
	}
	exported, err := cs.ExportKeyingMaterial(proofLabel, []byte(context), 32)
	if err != nil {
		return nil, fmt.Errorf("security: exporting keying material for the pre-shared key proof: %w", err)
	}
	return proofFrom(key, exported), nil
}

// proofFrom is the proof for the exporter's output.
func proofFrom(key Key, exported []byte) []byte {
	mac := hmac.New(sha256.New, key[:])
	mac.Write(exported)
	return mac.Sum(nil)
}

// VerifyProof checks the peer's proof, made as [Proof] describes; client is
// the peer's role. It returns [ErrKeyMismatch] if the proof was made with
// another key, for another connection, or for the other role, and another
// error only if cs cannot carry a proof; [ErrNoProof] if proof is empty.
// The comparison takes constant time.
func VerifyProof(key Key, cs *tls.ConnectionState, client bool, proof []byte) error {
	if len(proof) == 0 {
		return ErrNoProof
	}
	want, err := Proof(key, cs, client)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, proof) {
		return ErrKeyMismatch
	}
	return nil
}
