// Package discovery finds nearby peers with DNS-based Service Discovery
// over multicast DNS (RFC 6763 over RFC 6762), on IPv4 and IPv6.
//
// To be found, create a [Responder] and call [Responder.Register] with a
// [Service]; it probes, renames on conflict, announces, answers queries and
// says goodbye on [Registration.Close]. To find, call [NewBrowser] (or
// [Browse]) with a service type such as "_nearnet._tcp"; it delivers
// [Found], [Updated] and [Lost] events, each with the resolved service:
// host, port, addresses, TXT attributes and the interface it was seen on.
// [Config] selects interfaces; name "lo" to work on loopback.
//
// # Why our own implementation
//
// github.com/brutella/dnssd v1.2.14 is the only Go library that probes,
// renames, announces and sends goodbyes, but it picks interfaces by the
// MULTICAST flag (Linux's "lo" has none, so loopback discovery finds
// nothing unless root changes the flag), offers no way to supply its
// socket, and decodes with github.com/miekg/dns's whole-message Unpack,
// which drops a packet for one bad record. grandcat/zeroconf and
// libp2p/zeroconf resolve no conflicts, hashicorp/mdns is one-shot and
// pion/mdns does not probe. So this package is a responder and browser of
// our own on miekg/dns, used for the wire format only: packets are decoded
// one resource record at a time, and a malformed record is skipped by its
// RDLENGTH and counted ([Stats]) without hiding the rest of its packet.
//
// # Sockets
//
// Every Responder and Browser binds 0.0.0.0:5353 and [::]:5353 with
// SO_REUSEADDR and SO_REUSEPORT, so any number of them, in one process or
// several, share the port, and joins 224.0.0.251 and ff02::fb on each
// selected interface with multicast loopback on. The receiving interface
// comes from IP_PKTINFO / IPV6_PKTINFO control messages (on Windows, which
// has none, from the source address); answers carry only the addresses of
// the interface the query came in on: A records for its IPv4 addresses,
// AAAA records for its IPv6 ones, link-local included, and an NSEC record
// saying which of the two types the host has. Multicast goes out on each
// family the interface has an address of, the same packet on both, so a
// dual-stack peer is learned once per interface with all its addresses.
// Browse results give IPv6 link-local addresses the interface they were
// learned on as zone ("fe80::1%eth0"): such an address is dialled only
// there. Address records that cannot be dialled from where they came (an
// IPv4-mapped address in an AAAA record, a multicast or unspecified
// address, loopback from another host, link-local on a loopback interface)
// are ignored with a debug log and counted ([Stats].IgnoredAddrs), and a
// packet from a link-local address of another interface is dropped.
//
// Config.Net replaces all of this with another network's interfaces and
// sockets (a userspace TCP/IP stack's: package tunnel): one socket per
// family and interface from [Net.ListenMulticastUDP], joined to the group
// there and sending through it, so the receiving interface is the
// socket's; one-shot queries use [Net.ListenPacket]. Nothing then touches
// the host's sockets.
//
// On a plain Linux "lo" (no MULTICAST flag), IPv4 multicast works once the
// interface is chosen explicitly, but the kernel refuses IPv6 multicast
// (ENETUNREACH): loopback discovery then runs over IPv4 alone, still
// announcing ::1 in an AAAA record.
//
// # Following the network
//
// Interfaces and addresses change under a running node (RFC 6762 §8.3,
// §13). [Responder.Reannounce] re-reads them: it joins interfaces that
// appeared, drops those that went away (never an error), says goodbye
// (TTL 0) for addresses that are gone and announces the current ones with
// the cache-flush bit. With Config.Monitor (a [pathmon.Monitor]) a
// Responder does this by itself whenever the monitor reports a change, and
// a Browser joins new interfaces, queries on them at once, and forgets
// what it learned on interfaces that went away. Browsers turn the changes
// into [Updated] events carrying the new addresses. A responder does not
// probe again on a new interface (it announces at once); a conflict found
// there still sends it back to probing.
//
// # Deviations from the RFCs, all for speed or for port sharing
//
//   - A browser sends its first query at once, not after 20-120 ms, and
//     sends it twice: as a normal multicast query and as a one-shot query
//     from an ephemeral port (RFC 6762 §5.1), which responders answer by
//     unicast at once whatever they multicast in the last second.
//   - A responder answers a single-question query for a shared record
//     (PTR) after 0-20 ms instead of 20-120 ms.
//   - Probes ask for multicast answers (QM), not unicast (QU): a unicast
//     reply to port 5353 reaches only one of the sockets sharing the port
//     on the prober's host. For the same reason a QU query from this host
//     is answered by multicast.
//   - A service seen on several interfaces is one service whose Addrs are
//     the union of the addresses learned on each.
//   - A goodbye (TTL 0) withdraws only its own record even when it has
//     the cache-flush bit: a host that lost one address keeps the others.
//   - TXT data is limited to 1300 bytes in total ([MaxTXTSize]), RFC 6763's
//     recommendation rather than its hard limit, so that a service's
//     records fit in one Ethernet packet.
package discovery
