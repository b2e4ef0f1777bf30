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

// Addr returns the host's IPv4 address on eth0.
func (h *Host) Addr() netip.Addr { return h.Prefix().Addr() }

// Prefix returns the host's IPv4 address on eth0 with its prefix length.
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
