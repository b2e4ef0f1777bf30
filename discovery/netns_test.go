package discovery

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Multi-host tests: network namespaces joined by veth pairs (recipe in
// shared/netns.md), with our code running in them as helper processes (the
// test binary re-executed under "ip netns exec") and Avahi as an
// independent mDNS implementation. Nothing touches the machine's own
// interfaces. The tests need root, iproute2 and, for the Avahi ones,
// avahi-daemon, avahi-utils and dbus. Without them they skip, unless
// NEARNET_INTEROP=required, which turns the skip into a failure:
//
//	NEARNET_INTEROP=required unshare -n sh -c 'ip link set lo up && go test -run Interop ./discovery'

// requireOrSkip skips the test, or fails it when NEARNET_INTEROP=required.
func requireOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("NEARNET_INTEROP") == "required" {
		t.Fatalf("NEARNET_INTEROP=required but %s", msg)
	}
	t.Skip(msg)
}

func needRootAndTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		requireOrSkip(t, "network namespace tests need root")
	}
	for _, tool := range append([]string{"ip", "unshare"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			requireOrSkip(t, "%s is not installed (apt-get install avahi-daemon avahi-utils dbus iproute2)", tool)
		}
	}
}

// lab is a set of network namespaces that exists for one test.
type lab struct {
	t      *testing.T
	prefix string
	nss    []string
}

func newLab(t *testing.T) *lab {
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &lab{t: t, prefix: "nnd" + hex.EncodeToString(b[:])}
	t.Cleanup(func() {
		for i := len(l.nss) - 1; i >= 0; i-- {
			if out, err := exec.Command("ip", "netns", "del", l.nss[i]).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", l.nss[i], err, out)
			}
		}
	})
	return l
}

// ns creates namespace prefix-name with loopback up and returns its name.
func (l *lab) ns(name string) string {
	full := l.prefix + "-" + name
	l.run("ip", "netns", "add", full)
	l.nss = append(l.nss, full)
	l.run("ip", "-n", full, "link", "set", "lo", "up")
	return full
}

func (l *lab) run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bridge builds the shared/netns.md topology: hosts on one bridge, host i
// with address 10.99.0.i/24 on its eth0. It returns the host namespaces.
func (l *lab) bridge(hosts ...string) []string {
	br := l.ns("br")
	l.run("ip", "-n", br, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", br, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0")
	l.run("ip", "-n", br, "link", "set", "br0", "up")
	var out []string
	for i, h := range hosts {
		ns := l.ns(h)
		v := "v-" + h
		l.run("ip", "-n", br, "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.run("ip", "-n", br, "link", "set", v, "master", "br0")
		l.run("ip", "-n", br, "link", "set", v, "up")
		l.run("ip", "-n", ns, "addr", "add", fmt.Sprintf("10.99.0.%d/24", i+1), "dev", "eth0")
		l.run("ip", "-n", ns, "link", "set", "eth0", "multicast", "on", "up")
		out = append(out, ns)
	}
	return out
}

// wire joins namespaces a and b with a veth pair named dev on both sides,
// addresses 10.98.<subnet>.1 (a) and .2 (b).
func (l *lab) wire(a, b, dev string, subnet int) {
	l.run("ip", "-n", a, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", b)
	for i, ns := range []string{a, b} {
		l.run("ip", "-n", ns, "addr", "add", fmt.Sprintf("10.98.%d.%d/24", subnet, i+1), "dev", dev)
		l.run("ip", "-n", ns, "link", "set", dev, "multicast", "on", "up")
	}
}

// helperIn starts the test binary as a helper in namespace ns.
func helperIn(t *testing.T, ns string, env ...string) *helper {
	return startHelper(t, []string{"ip", "netns", "exec", ns}, env...)
}

// avahi is an avahi-daemon with a private D-Bus, running in one namespace.
type avahi struct {
	dir    string
	ns     string
	dbus   string // DBUS_SYSTEM_BUS_ADDRESS value
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (a *avahi) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stderr.Write(p)
}

func (a *avahi) log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stderr.String()
}

// startAvahi runs a private dbus-daemon and an avahi-daemon on eth0 of ns,
// publishing the given static service files. Both stop at cleanup.
func startAvahi(t *testing.T, ns string, services map[string]string) *avahi {
	dir := t.TempDir()
	a := &avahi{dir: dir, ns: ns, dbus: "unix:path=" + filepath.Join(dir, "dbus.sock")}
	for _, d := range []string{"services", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range services {
		if err := os.WriteFile(filepath.Join(dir, "services", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("dbus.conf", `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>`+a.dbus+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`)
	write("avahi.conf", `[server]
host-name=avahipeer
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
`)
	// Mount points for the daemon's private service and run directories
	// (the package normally creates /run/avahi-daemon).
	if err := os.MkdirAll("/run/avahi-daemon", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/avahi/services"); err != nil {
		requireOrSkip(t, "/etc/avahi/services is missing: %v", err)
	}
	bus := exec.Command("dbus-daemon", "--config-file="+filepath.Join(dir, "dbus.conf"), "--nofork", "--nopidfile")
	bus.Stderr = a
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, "dbus.sock")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	daemon := exec.Command("ip", "netns", "exec", ns, "unshare", "-m", "sh", "-c",
		`mount --bind "$1/services" /etc/avahi/services && mount --bind "$1/run" /run/avahi-daemon && exec avahi-daemon -f "$1/avahi.conf" --no-drop-root --no-chroot --no-rlimits --no-proc-title`,
		"sh", dir)
	daemon.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+a.dbus)
	daemon.Stdout, daemon.Stderr = a, a
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			daemon.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("avahi-daemon and dbus output:\n%s", a.log())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.log(), "Server startup complete") {
		if time.Now().After(deadline) {
			t.Fatalf("avahi-daemon did not start:\n%s", a.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return a
}

// cmd returns an Avahi client command run in the daemon's namespace.
func (a *avahi) cmd(args ...string) *exec.Cmd {
	c := exec.Command("ip", append([]string{"netns", "exec", a.ns}, args...)...)
	c.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+a.dbus)
	return c
}

// browse runs "avahi-browse -rtp typ" until a resolved line (starting
// with "=") for an instance with the given escaped name shows up.
func (a *avahi) browse(t *testing.T, typ, name string, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		c := a.cmd("timeout", "5", "avahi-browse", "-rtp", typ)
		out, _ := c.Output()
		last = string(out)
		for _, line := range strings.Split(last, "\n") {
			f := strings.Split(line, ";")
			if len(f) >= 10 && f[0] == "=" && f[3] == name {
				return f
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("avahi-browse did not resolve %q within %v; last output:\n%s", name, timeout, last)
	return nil
}

func TestInteropAvahiSeesOurResponder(t *testing.T) {
	needRootAndTools(t, "avahi-daemon", "avahi-browse", "dbus-daemon")
	l := newLab(t)
	hosts := l.bridge("a", "b")
	av := startAvahi(t, hosts[1], nil)
	// Our responder in host a, on the default interface selection (eth0;
	// lo is excluded).
	h := helperIn(t, hosts[0], helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Nearnet Interop", "NN_PORT=4242", "NN_TXT=id=xyz;v=1")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	f := av.browse(t, "_nearnet._tcp", `Nearnet\032Interop`, 20*time.Second)
	t.Logf("avahi-browse: %s", strings.Join(f, ";"))
	// =;eth0;IPv4;name;type;domain;host;address;port;txt
	if f[7] != "10.99.0.1" || f[8] != "4242" {
		t.Errorf("avahi resolved address %s port %s, want 10.99.0.1 4242: %q", f[7], f[8], f)
	}
	if !strings.HasPrefix(f[6], "nn-") || !strings.Contains(f[9], `"id=xyz"`) || !strings.Contains(f[9], `"v=1"`) {
		t.Errorf("avahi resolved host %s txt %s", f[6], f[9])
	}
}

const avahiService = `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>Avahi Peer</name>
  <service>
    <type>_nearnet._tcp</type>
    <port>4711</port>
    <txt-record>id=avahi1</txt-record>
    <txt-record>v=1</txt-record>
  </service>
</service-group>
`

func TestInteropWeSeeAvahi(t *testing.T) {
	needRootAndTools(t, "avahi-daemon", "avahi-publish-service", "dbus-daemon")
	l := newLab(t)
	hosts := l.bridge("a", "b")
	av := startAvahi(t, hosts[1], map[string]string{"nearnet.service": avahiService})
	h := helperIn(t, hosts[0], helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")

	// A static service from Avahi's service directory.
	ev := h.waitEvent(t, 20*time.Second, func(ev Event) bool { return ev.Kind == Found && ev.Service.Instance == "Avahi Peer" })
	s := ev.Service
	if s.Port != 4711 || s.TXT["id"] != "avahi1" || s.TXT["v"] != "1" || s.Host != "avahipeer.local." || s.Interface != "eth0" ||
		len(s.Addrs) != 1 || s.Addrs[0].String() != "10.99.0.2" {
		t.Errorf("found %+v", s)
	}

	// A service published over D-Bus, then withdrawn: Avahi's goodbye
	// makes it Lost.
	pub := av.cmd("avahi-publish-service", "Published Peer", "_nearnet._tcp", "4712", "k=v")
	pub.Stdout, pub.Stderr = av, av
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	ev = h.waitEvent(t, 20*time.Second, func(ev Event) bool { return ev.Kind == Found && ev.Service.Instance == "Published Peer" })
	if ev.Service.Port != 4712 || ev.Service.TXT["k"] != "v" {
		t.Errorf("found %+v", ev.Service)
	}
	pub.Process.Signal(os.Interrupt)
	h.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Lost && ev.Service.Instance == "Published Peer" })
}

// Avahi owns "Avahi Peer": our responder must rename its registration.
func TestInteropConflictWithAvahi(t *testing.T) {
	needRootAndTools(t, "avahi-daemon", "dbus-daemon")
	l := newLab(t)
	hosts := l.bridge("a", "b")
	startAvahi(t, hosts[1], map[string]string{"nearnet.service": avahiService})
	time.Sleep(2 * time.Second) // let Avahi finish probing its own name
	h := helperIn(t, hosts[0], helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Avahi Peer", "NN_PORT=1")
	if got := h.waitLine(t, "REGISTERED", 20*time.Second); got != "REGISTERED Avahi Peer (2)" {
		t.Errorf("helper says %q, want a rename to \"Avahi Peer (2)\"", got)
	}
}

// Two hosts joined by two links: each link carries only its own address,
// and a browser on both links sees one service with both addresses.
func TestInteropTwoInterfaces(t *testing.T) {
	needRootAndTools(t)
	l := newLab(t)
	a, b := l.ns("a"), l.ns("b")
	l.wire(a, b, "eth0", 1)
	l.wire(a, b, "eth1", 2)
	h := helperIn(t, a, helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Dual", "NN_PORT=99")
	h.waitLine(t, "REGISTERED", 15*time.Second)

	one := helperIn(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp", "NN_IFACES=eth1")
	ev := one.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Found })
	if got := fmt.Sprint(ev.Service.Addrs); got != "[10.98.2.1]" || ev.Service.Interface != "eth1" {
		t.Errorf("on eth1 only: addrs %s iface %s, want [10.98.2.1] eth1", got, ev.Service.Interface)
	}

	both := helperIn(t, b, helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")
	ev = both.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return (ev.Kind == Found || ev.Kind == Updated) && len(ev.Service.Addrs) == 2
	})
	if got := fmt.Sprint(ev.Service.Addrs); got != "[10.98.1.1 10.98.2.1]" {
		t.Errorf("on both links: addrs %s", got)
	}
	// Found exactly once, however many links it was seen on.
	time.Sleep(500 * time.Millisecond)
	both.stop(t)
	founds := 0
	for _, line := range both.output() {
		if strings.Contains(line, `"Kind":"Found"`) {
			founds++
		}
	}
	if founds != 1 {
		t.Errorf("service Found %d times on two links, want once:\n%s", founds, strings.Join(both.output(), "\n"))
	}
}

// A QU query from another host is answered by unicast, since the record
// was multicast recently (RFC 6762 §5.4).
func TestInteropQUAnswer(t *testing.T) {
	needRootAndTools(t)
	l := newLab(t)
	hosts := l.bridge("a", "b")
	h := helperIn(t, hosts[0], helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=QU Target", "NN_PORT=5")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	q := helperIn(t, hosts[1], helperEnv+"=qu", "NN_TYPE=_nearnet._tcp")
	if got := q.waitLine(t, "", 10*time.Second); got != "UNICAST" {
		t.Errorf("QU query answered: %s, want UNICAST", got)
	}
}

// When the responder's address changes and it re-announces, browsers
// learn the new address and, through the cache-flush bit, forget the old.
func TestInteropAddressChange(t *testing.T) {
	needRootAndTools(t)
	l := newLab(t)
	hosts := l.bridge("a", "b")
	h := helperIn(t, hosts[0], helperEnv+"=respond", "NN_TYPE=_nearnet._tcp", "NN_INSTANCE=Mover", "NN_PORT=5", "NN_TXT=v=1")
	h.waitLine(t, "REGISTERED", 15*time.Second)
	br := helperIn(t, hosts[1], helperEnv+"=browse", "NN_TYPE=_nearnet._tcp")
	br.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return ev.Kind == Found && fmt.Sprint(ev.Service.Addrs) == "[10.99.0.1]"
	})
	// Renumber host a. (Deleting a primary address after adding another
	// in its subnet would delete the secondary too.)
	l.run("ip", "-n", hosts[0], "addr", "del", "10.99.0.1/24", "dev", "eth0")
	l.run("ip", "-n", hosts[0], "addr", "add", "10.99.0.51/24", "dev", "eth0")
	time.Sleep(addrCacheTime + 100*time.Millisecond)
	h.send(t, "reannounce")
	h.waitLine(t, "OK", 5*time.Second)
	br.waitEvent(t, 10*time.Second, func(ev Event) bool {
		return ev.Kind == Updated && fmt.Sprint(ev.Service.Addrs) == "[10.99.0.51]"
	})
	// And a TXT change over the real link.
	h.send(t, "settxt v=2")
	h.waitLine(t, "OK", 5*time.Second)
	br.waitEvent(t, 10*time.Second, func(ev Event) bool { return ev.Kind == Updated && ev.Service.TXT["v"] == "2" })
}
