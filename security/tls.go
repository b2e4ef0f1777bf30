package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// ALPN is the application protocol both configurations offer and require
// when the peer offers any: "nearnet/1". A peer that offers ALPN without it
// fails the handshake with a no_application_protocol alert rather than
// speaking a protocol the other side does not. A transport that must offer
// something else (such as "http/1.1" to an HTTP proxy that inspects TLS) may
// replace NextProtos in the returned configuration.
const ALPN = "nearnet/1"

// ServerConfig returns a TLS configuration for accepting connections as id.
//
// It requires TLS 1.3 and a client certificate. The client's certificate is
// not checked against any CA; instead verify is called with it during the
// handshake, and an error from verify aborts the handshake with a
// bad_certificate alert and is returned by [tls.Conn.Handshake]. A nil verify
// accepts any certificate: the session layer must then authenticate the peer
// another way, such as with [Proof].
//
// Session tickets are disabled: resumption would skip the client certificate
// on later connections and re-trust a peer removed from the trusted set
// since; a full handshake between nearby peers is cheap.
//
// Each call returns a new configuration, which the caller may modify.
func ServerConfig(id *Identity, verify func(leaf *x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{id.TLSCertificate()},
		ClientAuth:             tls.RequireAnyClientCert,
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true,
		VerifyConnection:       verifyConnection(verify),
	}
}

// ClientConfig returns a TLS configuration for connecting as id. It is the
// counterpart of [ServerConfig]: TLS 1.3 only, id's certificate offered to
// the server, the server's certificate passed to verify (nil accepts any)
// instead of the Web PKI's host name checks, which do not apply to peers, and
// no session resumption.
//
// In TLS 1.3 the client finishes its handshake before the server has checked
// the client's certificate, so a server that rejects it is seen by the client
// as an error ("remote error: tls: bad certificate") from its first Read, not
// from Handshake.
func ClientConfig(id *Identity, verify func(leaf *x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{id.TLSCertificate()},
		InsecureSkipVerify:     true, // verification is done by verifyConnection
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true,
		VerifyConnection:       verifyConnection(verify),
	}
}

func verifyConnection(verify func(leaf *x509.Certificate) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("security: the peer presented no certificate")
		}
		if verify == nil {
			return nil
		}
		return verify(cs.PeerCertificates[0])
	}
}
