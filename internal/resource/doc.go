// Package resource sends whole files ("resources") with progress, SHA-256
// verification and resume, in the manner of Multipeer Connectivity's
// sendResource. Each transfer runs on a reliable byte stream of its own;
// the package works over any such stream (a nearnet stream, a net.Conn,
// net.Pipe), and the root package opens the streams.
//
// The sender calls [Send] with an [Offer] (name, size, metadata) and the
// content; nil means the receiver has verified the file and given it its
// name. The receiver calls [ReadOffer], looks at the [Incoming] offer, and
// either [Incoming.Accept]s it into a directory, getting a [Received], or
// [Incoming.Reject]s it. Both take a [Progress] callback. Names from the
// network pass [SafeName] and are resolved through [os.Root]; an
// interrupted transfer leaves a partial file that the next attempt resumes
// from; Accept keeps those within bounds, and [PrunePartials] applies the
// bounds at once (a receiver's start-up). Memory per transfer is
// four 1 MiB buffers per side, whatever the file's size: each side reads
// one while it hashes and writes another.
//
// # Wire format
//
// This is the text PROTOCOL.md carries.
//
// One transfer uses one reliable, ordered byte stream. Control messages are
// frames:
//
//	length  4 bytes, big-endian, 2 to 65536
//	body    length bytes: one JSON object (RFC 8259), UTF-8
//
// A receiver of a message MUST ignore fields it does not know. A SHA-256 is
// 64 hex digits (lowercase when sent; either case is accepted). Sizes and
// offsets are JSON integers from 0 to 2^53-1. S is the sender, R the
// receiver:
//
//	S -> R  offer    {"v":1,"name":"album/a.jpg","size":1048576,"meta":{"type":"image/jpeg"}}
//	R -> S  reply    {"accept":true,"offset":K,"prefix_sha256":"<hex>"}
//	              or {"accept":false,"code":"exists","reason":"a file of that name exists"}
//	S -> R  start    {"offset":O}
//	S -> R  content  size-O bytes, unframed: the resource's bytes O to size-1
//	S -> R  trailer  {"sha256":"<hex>"}
//	R -> S  result   {"ok":true}
//	              or {"ok":false,"code":"hash_mismatch","error":"content SHA-256 does not match the sender's"}
//
// Offer: v MUST be 1; a receiver rejects another version with code
// "version". name is a '/'-separated relative path; a receiver rejects a
// name that breaks the rules of [SafeName] with code "unsafe_name", after
// normalizing it to Unicode NFC. size is required; meta (string to string)
// is optional. A receiver refuses an offer whose size, less what it holds
// for a resume, exceeds its free space (code "disk_full").
//
// Reply: a rejection ends the transfer. An acceptance carries K, the
// number of bytes the receiver already holds from an earlier attempt at the
// same resource (0 if none), and, if K > 0, prefix_sha256, the SHA-256 of
// those K bytes.
//
// Start: O is K if the SHA-256 of the sender's own first K bytes equals
// prefix_sha256, and 0 otherwise (also when the sender cannot read its
// source twice). Any other value is a protocol error. With O = 0 the
// receiver discards what it held. Then come exactly size-O content bytes.
// The receiver sends nothing from its reply until its result (which may
// come early, below), so neither side ever waits to write while the other
// writes.
//
// Trailer: the SHA-256 of the whole content, bytes 0 to size-1, including
// any the receiver already held. The receiver compares it with the hash of
// what it holds.
//
// Result: "ok" is sent only after the content verified and the file has
// its final name. After the result the stream carries nothing more and
// either side may close it.
//
// Early result: a receiver that cannot go on after its acceptance sends
// its failed result at once, before the trailer: its disk is full
// ("disk_full"), a write failed ("io"), or no byte came from the sender
// for its idle deadline ("idle_timeout"). After a disk_full or io result
// it reads and discards the rest of the content and the trailer (so that
// a sender still writing is not reset and finds the result), unless the
// sender closes first; after idle_timeout it closes the stream. A sender
// SHOULD read the stream while it sends the content and stop sending when
// a result comes; a sender that does not still reads the result after its
// trailer. Either way the result is the last message.
//
// Idle deadline: a receiver drops an accepted transfer when, while it
// waits for bytes (the start, the content, the trailer), none come for
// its idle deadline (nearnet: 30 s by default, AcceptOptions.IdleTimeout;
// time the receiver spends writing to its disk does not count). It keeps
// what it got for a resume, and the name is free again at once.
//
// Codes in a rejection or a failed result: "declined" (the application
// said no), "exists" (the name is taken), "in_progress" (the receiver is
// already receiving this resource), "unsafe_name", "version", "protocol",
// "hash_mismatch" (the receiver deleted what it held; send again from
// zero), "disk_full" (a rejection: the file needs more than the receiver's
// free space, which the reason gives; a result: the disk filled up during
// the transfer), "idle_timeout" (a result: the sender sent nothing for
// the receiver's idle deadline), "io" (the receiver could not write; the
// reason names the file system's error, e.g. "read-only file system"). A
// sender MUST treat an unknown code as a failure. reason and error are
// text for people; a failed result says what the receiver kept.
//
// There is no message to abort a transfer: either side aborts by closing
// (or resetting) the stream, at any point. A sender whose source ends
// before size bytes does that. The receiver keeps what it got for a
// resume (within the bounds below).
//
// # Files on the receiver
//
// The content goes to a partial file in the directory of the final name,
// named ".nearnet-partial-" followed by the first 16 bytes, in hex, of
// SHA-256("nearnet-partial-v1" 0x00 key 0x00 name 0x00 size-in-decimal
// 0x00), where key identifies the sender ([AcceptOptions.PartialKey]). A
// resend of the same name and size from the same sender therefore finds
// it. After the content verifies, the partial file is synced and renamed
// (without replacing an existing file unless asked: a hard link that fails
// if the name exists, then removal of the partial name). A hash mismatch
// deletes it; any other failure, a cancellation included, keeps it for a
// resume, unless it is empty or the bounds of [AcceptOptions] (how many
// partial files, how many bytes in all, how old) leave no room for it. A
// rejection before the content (name taken, application said no) does
// not touch it. Starting over from zero deletes and recreates it rather
// than truncating it. The final name never holds a partial file.
//
// The name is the NFC form of the offered one ([NormalizeName]). Offers
// that do not fit the free space are refused, a sender silent for
// [AcceptOptions.IdleTimeout] is dropped, and partial files of transfers
// not running are kept within [AcceptOptions.MaxPartials],
// MaxPartialBytes and MaxPartialAge, oldest deleted first.
package resource
