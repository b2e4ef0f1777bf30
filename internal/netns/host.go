//go:build linux

package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Host is one namespace of a [Lab]: a machine with lo and one interface,
// eth0, on the lab's bridge.
//
// A Host is safe for concurrent use by multiple goroutines.
type Host struct {
	Name     string // as given to New or AddHost
	NS       string // network namespace name, for "ip -n" and "ip netns exec"
	Hostname string // host name processes started by Command see (their own UTS namespace)

	lab *Lab

	mu     sync.Mutex // guards prefix and avahi
	prefix netip.Prefix
	avahi  *Avahi
}

// Addr returns the host's IPv4 address on eth0, or the zero Addr for a host
// made by [Lab.AddHostIPv6Only].
func (h *Host) Addr() netip.Addr { return h.Prefix().Addr() }

// IPv6Only reports whether the host has no IPv4 address (see
// [Lab.AddHostIPv6Only]).
func (h *Host) IPv6Only() bool { return !h.Prefix().IsValid() }

// LinkLocal returns the IPv6 link-local address of the host's eth0 with
// "eth0" as its zone, the form a peer on the link dials it in
// ("[fe80::...%eth0]:port" from a host whose interface on the link is also
// eth0, as every lab host's is). The test fails if there is none.
func (h *Host) LinkLocal(t testing.TB) netip.Addr {
	t.Helper()
	a, err := h.waitLinkLocal()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitLinkLocal returns eth0's IPv6 link-local address, waiting (boundedly)
// for the kernel to assign it once eth0 is up.
func (h *Host) waitLinkLocal() (netip.Addr, error) {
	var last string
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "-n", h.NS, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link").Output()
		cancel()
		if err != nil {
			return netip.Addr{}, fmt.Errorf("netns: %s: ip -6 addr show dev eth0: %w", h.Name, err)
		}
		last = string(out)
		if a, ok := parseLinkLocal(last); ok {
			return a.WithZone("eth0"), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return netip.Addr{}, fmt.Errorf("netns: %s: eth0 has no usable IPv6 link-local address: %q", h.Name, last)
}

// parseLinkLocal finds the first fe80::/10 address in the output of
// `ip -6 -o addr show`, skipping tentative and DAD-failed ones.
func parseLinkLocal(out string) (netip.Addr, bool) {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "tentative") || strings.Contains(line, "dadfailed") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet6" {
				continue
			}
			if p, err := netip.ParsePrefix(f[i+1]); err == nil && p.Addr().IsLinkLocalUnicast() {
				return p.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

// DisableIPv6 turns IPv6 off on the host's eth0, which removes its IPv6
// addresses, link-local included: the host is then reached over IPv4 only,
// as a machine on an IPv4-only network. A test of what happens when a
// host's address changes needs this, since the link-local address does not
// change.
func (h *Host) DisableIPv6() error {
	if h.IPv6Only() {
		return fmt.Errorf("netns: DisableIPv6 on %s, which has no IPv4 address", h.Name)
	}
	return ipCmd("netns", "exec", h.NS, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1")
}

// Prefix returns the host's IPv4 address on eth0 with its prefix length
// (invalid for a host without one).
func (h *Host) Prefix() netip.Prefix {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.prefix
}

// Lab returns the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// wrapperMark is $0 of the shell that sets a process's host name; cmdName
// looks for it to name processes.
const wrapperMark = "netns-host"

// Command returns a command that runs name with args inside the host's
// network namespace, in a UTS namespace of its own whose host name is
// [Host.Hostname] (so each host announces its own .local name). The command
// runs in a process group of its own; cancelling ctx kills the group. The
// caller may set Env, Dir and the standard streams before starting it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := []string{"netns", "exec", h.NS,
		"unshare", "--uts", "--",
		"sh", "-c", `hostname "$1" && shift && exec "$@"`, wrapperMark, h.Hostname,
		name}
	cmd := exec.CommandContext(ctx, "ip", append(argv, args...)...)
	ownGroup(cmd)
	return cmd
}

// Run runs name with args inside the host (see [Host.Command]) and returns
// its combined stdout and stderr. The error, for a failure or a non-zero
// exit, includes that output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s %s: %w: %s", h.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Start starts a long-running process inside the host (see [Host.Command]
// and [Proc]). It is killed, with its process group, when the test ends.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, h.Command(context.Background(), name, args...))
}

// Do calls fn on a goroutine locked to an OS thread that has joined the
// host's network namespace, and returns fn's error. Sockets created by fn
// belong to the host and keep working from any goroutine afterwards;
// goroutines started by fn run in the test's own namespace. The host name is
// not changed.
func (h *Host) Do(fn func() error) error {
	target, err := os.Open("/run/netns/" + h.NS)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// If the thread cannot be put back it stays locked, and the runtime
		// ends it when this goroutine returns rather than reuse it.
		orig, err := os.Open("/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			result <- fmt.Errorf("netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			result <- fmt.Errorf("netns: enter %s: %w", h.NS, err)
			return
		}
		defer func() {
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		result <- fn()
	}()
	return <-result
}

// LinkDown cuts the host off the bridge by taking the bridge side of its
// veth pair down; eth0 stays configured but loses carrier.
func (h *Host) LinkDown() error {
	return ipCmd("-n", h.lab.bridge, "link", "set", "v-"+h.Name, "down")
}

// LinkUp reconnects a host cut off by [Host.LinkDown].
func (h *Host) LinkUp() error {
	return ipCmd("-n", h.lab.bridge, "link", "set", "v-"+h.Name, "up")
}

// SetMTU sets the MTU of the host's link, on eth0 and on the bridge side.
func (h *Host) SetMTU(mtu int) error {
	if err := ipCmd("-n", h.lab.bridge, "link", "set", "v-"+h.Name, "mtu", strconv.Itoa(mtu)); err != nil {
		return err
	}
	return ipCmd("-n", h.NS, "link", "set", "eth0", "mtu", strconv.Itoa(mtu))
}

// SetAddr replaces the IPv4 addresses of eth0 with p, as when a machine
// moves to another network; [Host.Addr] returns it from then on.
func (h *Host) SetAddr(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("netns: SetAddr(%s): want an IPv4 prefix", p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ipCmd("-n", h.NS, "-4", "addr", "flush", "dev", "eth0"); err != nil {
		return err
	}
	if err := ipCmd("-n", h.NS, "addr", "add", p.String(), "dev", "eth0"); err != nil {
		return err
	}
	h.prefix = p
	return nil
}

// AddAddr adds an extra address (IPv4 or IPv6) to eth0. [Host.Addr] is not
// changed.
func (h *Host) AddAddr(p netip.Prefix) error {
	return ipCmd("-n", h.NS, "addr", "add", p.String(), "dev", "eth0")
}

// DelAddr removes an address added by [Host.AddAddr].
func (h *Host) DelAddr(p netip.Prefix) error {
	return ipCmd("-n", h.NS, "addr", "del", p.String(), "dev", "eth0")
}
