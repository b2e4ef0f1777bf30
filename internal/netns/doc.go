// Package netns is a multi-host harness for tests: each "host" is a Linux
// network namespace joined by a veth pair to a bridge that lives in a
// namespace of its own, so a test gets several machines on one LAN without
// touching the real network.
//
// Start with [New], which returns a [*Lab] and tears everything down when the
// test ends, or [NewIPv6Only] for hosts with only IPv6 link-local addresses.
// Each [*Host] has an IPv4 address (none with NewIPv6Only) and an IPv6
// link-local one ([Host.LinkLocal]; duplicate address detection is off), runs commands inside its
// namespace ([Host.Command], [Host.Start]), runs Go code there ([Host.Do]),
// can be cut off and reconnected ([Host.LinkDown], [Host.LinkUp]), can get a
// second link to another host beside the bridge ([Lab.Wire]) and can run
// Avahi as an independent mDNS peer ([Host.StartAvahi]) that publishes
// services over D-Bus or from static service files ([Host.AvahiPublish],
// [Avahi.AddServiceFile]). [Proc] captures a long-running process's output
// line by line so a test can wait for a line or a JSON event with a deadline
// ([Proc.WaitLine], [WaitJSON]), or read it in order like a pipe
// ([Proc.WaitLineFrom]).
//
// A test reads like this:
//
//	lab := netns.New(t, "a", "b")
//	a, b := lab.Host("a"), lab.Host("b")
//	srv := b.Start(t, "socat", "-u", "UDP4-RECV:9999", "STDOUT")
//	// ... send from a to b.Addr() with a.Command(ctx, ...) or in-process with a.Do(...)
//	line, err := srv.WaitLine(ctx, func(l string) bool { return l == "ping" })
//
// Every lab uses the addresses of [Subnet]; a test on loopback alone can use
// a lab of one host and its lo.
//
// Namespaces need root and iproute2. Tests that need them call [Require] (New
// does), which skips the test, or fails it when NEARNET_INTEROP=required is
// set, so CI can never skip them silently.
package netns
