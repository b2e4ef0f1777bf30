// Package group is a session of many peers: members of a named group find
// each other (over DNS-SD or from seed addresses), learn who joins and
// leaves, and broadcast messages to all members or a subset. Each sender's
// messages arrive in the order sent, exactly once, at every member that
// stays in the group. PROTOCOL.md, section "Groups", specifies the frames.
//
// Start with [Join], which creates and starts a [nearnet.Node] configured by
// [Config].Node. Then:
//
//   - [Group.Send] broadcasts a message (or sends it to some members);
//     [Group.Receive] returns the next message with its sender.
//   - [Group.NextEvent] reports members joining and leaving, neighbours
//     dropped for lagging, and forged messages; [Group.Members] lists the
//     members now.
//   - [Group.Close] leaves the group: the others see the member leave.
//
// While the group has at most Config.MeshLimit members every member connects
// to every other (a full mesh) and messages go straight from their sender.
// Beyond that each member keeps a bounded number of connections (a ring with
// chords, Config.Degree) and forwards what it receives, suppressing
// duplicates by sender and sequence number. Every message is signed by its
// sender's identity key, so a member that forwards it cannot change it or
// pass off its own message as another's.
package group
