//go:build linux

package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Subnet is the IPv4 subnet of every lab: host number N (1, 2, ... in the
// order hosts are added) gets 10.99.0.N/24 on its eth0. The addresses are the
// same in every lab; labs cannot collide because each lives in namespaces of
// its own and nothing is routed between them or to the machine's network.
var Subnet = netip.MustParsePrefix("10.99.0.0/24")

// Lab is a bridge namespace and one namespace per host, each host's eth0
// joined by a veth pair to the bridge (multicast snooping off, so mDNS
// floods like on a plain switch). Namespace names start with a random prefix
// ("nn" and 4 hex digits), so labs of parallel test runs never collide.
//
// A Lab is torn down when the test that made it ends: every process left in
// its namespaces is killed and the namespaces are deleted.
//
// A Lab is safe for concurrent use by multiple goroutines.
type Lab struct {
	t      testing.TB
	prefix string
	bridge string // the bridge's namespace

	mu    sync.Mutex // guards hosts
	hosts []*Host
}

var hostNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,12}$`)

// New makes a lab with the named hosts (see [Lab.AddHost] for the rules on
// names). It skips the test, through [Require], when not running as root or
// when iproute2 or unshare is missing, and fails it if the lab cannot be set up.
func New(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	Require(t, fmt.Sprintf("root and iproute2: running as uid %d", os.Geteuid()), os.Geteuid() == 0)
	for _, name := range []string{"ip", "unshare", "hostname"} {
		_, err := exec.LookPath(name)
		Require(t, fmt.Sprintf("root and iproute2: %s not found in $PATH", name), err == nil)
	}
	l := &Lab{t: t}
	var err error
	for range 5 { // a random prefix already in use is retried
		l.prefix = "nn" + randomHex(2)
		l.bridge = l.prefix + "br"
		if err = ipCmd("netns", "add", l.bridge); err == nil {
			break
		}
	}
	Require(t, fmt.Sprintf("root and iproute2: cannot create a network namespace: %v", err), err == nil)
	t.Cleanup(l.teardown)
	for _, args := range [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"link", "set", "br0", "type", "bridge", "mcast_snooping", "0"},
		{"link", "set", "br0", "up"},
	} {
		if err := ipCmd(append([]string{"-n", l.bridge}, args...)...); err != nil {
			t.Fatalf("netns: set up bridge: %v", err)
		}
	}
	for _, name := range hosts {
		l.AddHost(name)
	}
	return l
}

// Prefix returns the random prefix of this lab's namespace names.
func (l *Lab) Prefix() string { return l.prefix }

// BridgeNS returns the name of the namespace that holds the bridge br0 and
// the bridge-side ends of the veth pairs (v-NAME).
func (l *Lab) BridgeNS() string { return l.bridge }

// Hosts returns the lab's hosts in the order they were added.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// Host returns the host with the given name. The test fails if there is none.
func (l *Lab) Host(name string) *Host {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	l.t.Fatalf("netns: no host %q in the lab", name)
	return nil
}

// AddHost adds a host: namespace PREFIX-NAME with lo up and eth0 (multicast
// on, up) holding the next address of [Subnet] and an IPv6 link-local
// address, its peer v-NAME attached to the bridge. Duplicate address
// detection is off in the host, so the link-local address is usable at once
// (and [Host.LinkLocal] returns it when AddHost returns). Names are 1 to 13
// characters of a-z, 0-9 and '-', starting with a letter, and unique in the
// lab; the name is also the host name that processes started in the host
// see. The test fails if the host cannot be added.
func (l *Lab) AddHost(name string) *Host { return l.addHost(name, false) }

// AddHostIPv6Only adds a host as [Lab.AddHost] does, but with no IPv4
// address at all: eth0 has only its IPv6 link-local address, as on Apple's
// peer-to-peer Wi-Fi. [Host.Addr] is the zero Addr for such a host; use
// [Host.LinkLocal].
func (l *Lab) AddHostIPv6Only(name string) *Host { return l.addHost(name, true) }

// NewIPv6Only is [New] with hosts added by [Lab.AddHostIPv6Only].
func NewIPv6Only(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	l := New(t)
	for _, name := range hosts {
		l.AddHostIPv6Only(name)
	}
	return l
}

func (l *Lab) addHost(name string, v6only bool) *Host {
	t := l.t
	t.Helper()
	if !hostNameRE.MatchString(name) {
		t.Fatalf("netns: bad host name %q: want 1 to 13 of a-z, 0-9, '-', starting with a letter", name)
	}
	l.mu.Lock()
	for _, h := range l.hosts {
		if h.Name == name {
			l.mu.Unlock()
			t.Fatalf("netns: host %q added twice", name)
		}
	}
	index := len(l.hosts) + 1
	if index > 254 {
		l.mu.Unlock()
		t.Fatalf("netns: a lab has at most 254 hosts")
	}
	h := &Host{
		Name:     name,
		NS:       l.prefix + "-" + name,
		Hostname: name,
		lab:      l,
	}
	if !v6only {
		h.prefix = netip.PrefixFrom(nthAddr(Subnet, index), Subnet.Bits())
	}
	// Registered before it exists, so a half-made host is still torn down.
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()

	veth := "v-" + name
	if err := ipCmd("netns", "add", h.NS); err != nil {
		t.Fatalf("netns: add host %s: %v", name, err)
	}
	// IPv6 on, duplicate address detection off (shared/netns.md), for eth0
	// too, which takes the defaults of the namespace it is made in. A
	// kernel without IPv6 still makes IPv4 hosts.
	ipv6 := ipCmd("netns", "exec", h.NS, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.accept_dad=0")
	if ipv6 != nil && v6only {
		Require(t, fmt.Sprintf("IPv6 in network namespaces: %v", ipv6), false)
	}
	steps := [][]string{
		{"-n", l.bridge, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
	}
	if ipv6 == nil {
		steps = append(steps, []string{"netns", "exec", h.NS, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"})
	}
	steps = append(steps, [][]string{
		{"-n", l.bridge, "link", "set", veth, "master", "br0"},
		{"-n", l.bridge, "link", "set", veth, "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
	}...)
	if !v6only {
		steps = append(steps, []string{"-n", h.NS, "addr", "add", h.prefix.String(), "dev", "eth0"})
	}
	steps = append(steps, []string{"-n", h.NS, "link", "set", "eth0", "multicast", "on", "up"})
	for _, args := range steps {
		if err := ipCmd(args...); err != nil {
			t.Fatalf("netns: add host %s: %v", name, err)
		}
	}
	if ipv6 == nil {
		if _, err := h.waitLinkLocal(); err != nil {
			t.Fatalf("netns: add host %s: %v", name, err)
		}
	}
	return h
}

var devNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)

// Wire joins hosts a and b by a link of their own, outside the bridge: a
// veth pair whose ends are both named dev, a in a's namespace and the other
// in b's, multicast on and up, with the first address of subnet on a's end
// and the second on b's (10.98.2.1/24 and 10.98.2.2/24 for 10.98.2.0/24).
// A host so gets a second interface (a third, ...) besides eth0, as a
// machine with two network cards has. dev is 1 to 15 of a-z and 0-9,
// starting with a letter, and must be new in both hosts ("eth0" is taken);
// subnet must be IPv4, hold at least two hosts, and not overlap [Subnet].
// The link goes when the lab does. The test fails if it cannot be made.
func (l *Lab) Wire(a, b *Host, dev string, subnet netip.Prefix) {
	t := l.t
	t.Helper()
	switch {
	case a == nil || b == nil || a.lab != l || b.lab != l:
		t.Fatalf("netns: Wire: both hosts must be of this lab")
	case a == b:
		t.Fatalf("netns: Wire(%s, %s): a host cannot be wired to itself", a.Name, b.Name)
	case !devNameRE.MatchString(dev):
		t.Fatalf("netns: Wire: bad interface name %q: want 1 to 15 of a-z, 0-9, starting with a letter", dev)
	case !subnet.IsValid() || !subnet.Addr().Is4() || subnet.Bits() > 30:
		t.Fatalf("netns: Wire: subnet %s: want an IPv4 prefix of /30 or wider", subnet)
	case subnet.Overlaps(Subnet):
		t.Fatalf("netns: Wire: subnet %s overlaps the bridge's %s", subnet, Subnet)
	}
	subnet = subnet.Masked()
	steps := [][]string{
		{"-n", a.NS, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", b.NS},
	}
	for i, h := range []*Host{a, b} {
		p := netip.PrefixFrom(nthAddr(subnet, i+1), subnet.Bits())
		steps = append(steps,
			[]string{"-n", h.NS, "addr", "add", p.String(), "dev", dev},
			[]string{"-n", h.NS, "link", "set", dev, "multicast", "on", "up"})
	}
	for _, args := range steps {
		if err := ipCmd(args...); err != nil {
			t.Fatalf("netns: wire %s and %s by %s: %v", a.Name, b.Name, dev, err)
		}
	}
}

// teardown kills every process left in the lab's namespaces (they can only
// be ours) and deletes the namespaces, hosts first, which also removes their
// veth pairs.
func (l *Lab) teardown() {
	l.mu.Lock()
	var names []string
	for i := len(l.hosts) - 1; i >= 0; i-- {
		names = append(names, l.hosts[i].NS)
	}
	l.mu.Unlock()
	names = append(names, l.bridge)
	for _, ns := range names {
		killAll(ns)
	}
	for _, ns := range names {
		if err := ipCmd("netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			l.t.Errorf("netns: teardown: %v", err)
		}
	}
}

// killAll kills the processes in namespace ns and waits, boundedly, for them
// to be gone.
func killAll(ns string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pids := nsPids(ns)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nsPids(ns string) []int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			// Zombies still show up until reaped; they are harmless.
			if b, err := os.ReadFile("/proc/" + f + "/stat"); err == nil && zombie(b) {
				continue
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// zombie reports whether a /proc/PID/stat line is a zombie's.
func zombie(stat []byte) bool {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// ipCmd runs ip with args, bounded in time; the error includes ip's output.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// nthAddr returns the address n places after the start of an IPv4 /24 or larger.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	a[2] += byte(n >> 8)
	a[3] += byte(n)
	return netip.AddrFrom4(a)
}
