// Package unicastdns is a small client for an authoritative DNS server:
// ordinary queries ([Client.Query]) and dynamic updates (RFC 2136,
// [Client.Update]) signed with TSIG (RFC 8945). It is what wide-area DNS-SD
// (registering and browsing service instances in a unicast domain) and the
// exchange of ICE candidates through DNS build on.
//
// Start with [New] and a [Config] naming the server, the zone updates go
// to, and the TSIG [Key] ([ParseKey] reads "name:algorithm:base64secret",
// [LoadKeyFile] reads a key file as tsig-keygen writes it, refusing one
// that other users could read). A nil or zero Key sends unsigned messages.
//
// Every exchange goes over UDP, and again over TCP when the answer is
// truncated. Failures that another try may cure (a timeout, a network
// error, SERVFAIL) are retried with backoff until the context ends or the
// attempts run out; the others (a key the server rejects, REFUSED,
// NOTAUTH, NOTZONE, FORMERR, a response whose signature does not verify)
// fail at once with an [*Error] whose [Error.Permanent] is true.
// errors.Is(err, [ErrBadKey]) tells a TSIG key the server does not accept.
//
// Messages are encoded and decoded with github.com/miekg/dns, so records
// in the API are its dns.RR values.
package unicastdns
