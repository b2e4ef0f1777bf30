// Package security authenticates nearnet peers to each other over TLS 1.3.
//
// Every node has an [Identity]: a P-256 key and a self-signed certificate,
// made with [NewIdentity] or kept in a file by [LoadOrCreateIdentity]. Peers
// know each other by [Fingerprint], a hash of the public key.
//
// [ServerConfig] and [ClientConfig] give TLS configurations with mutual
// authentication in which a verify function decides whom to trust:
// [PinVerifier] (fixed fingerprints), [KnownPeersVerifier] (a known-peers
// file, optionally trusting on first use) or [RootsVerifier] (a private CA).
// With a nil verify function, any certificate is accepted and peers instead
// prove a shared [Key] to each other with [Proof] and [VerifyProof] after the
// handshake.
//
// Peers that know nothing of each other yet can pair with a short code
// instead: one side makes a [PairingCode] with [NewPairingCode], shows it and
// runs an [Offer]; the other types it ([ParsePairingCode]) and calls
// [StartAnswer]. Each connection then runs a [Pairing] (CPace, bound to the
// TLS session); when [Pairing.Confirm] returns nil, pin [Pairing.Peer].
// PROTOCOL.md, section 16, specifies the exchange; nearnet.Node.OfferPairing
// and AnswerPairing run it in the link handshake.
package security
