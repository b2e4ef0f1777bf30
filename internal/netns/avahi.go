//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Avahi is an avahi-daemon running in a host as an independent mDNS peer,
// with a private D-Bus system bus for avahi-browse and avahi-publish-service.
// It answers on eth0 only, with host name "avahi-HOSTNAME". On a host with
// an IPv4 address it runs over IPv4 alone with only IPv4 address records
// (eth0's IPv6 link-local address is not published, so a resolved
// service's address is the host's [Host.Addr]). On a host made by
// [Lab.AddHostIPv6Only] it runs over IPv6 alone (use-ipv4=no,
// use-ipv6=yes) and publishes eth0's link-local address ([Host.LinkLocal]).
//
// It follows shared/netns.md: the daemon runs in a mount namespace of its
// own in which /etc/avahi/services and /run/avahi-daemon are bind-mounted
// from a test directory, so nothing on the machine is changed, and it is
// stopped when the test ends. It starts with no static services;
// [Avahi.AddServiceFile] adds them.
type Avahi struct {
	Host       *Host
	HostName   string // the daemon's mDNS host name, without ".local"
	Dir        string // config, bus socket, services and run directories
	BusAddress string // DBUS_SYSTEM_BUS_ADDRESS of the private bus
	Daemon     *Proc  // avahi-daemon; it logs to stderr
	Bus        *Proc  // dbus-daemon
}

// AvahiService is one resolved service, an '=' line of `avahi-browse -rtp`.
type AvahiService struct {
	Interface string // e.g. "eth0"
	Protocol  string // "IPv4" or "IPv6"
	Name      string // instance name, unescaped
	Type      string // e.g. "_nearnet._tcp"
	Domain    string // e.g. "local"
	Host      string // target host, e.g. "a.local"
	Address   string // the host's address
	Port      int
	TXT       []string // entries unquoted, in the order avahi-browse prints them
}

// TXTValue returns the value of the first TXT entry key=value whose key
// equals key (case-insensitively, as RFC 6763 section 6.4 says), and whether
// there is one. A key without '=' has the value "".
func (s AvahiService) TXTValue(key string) (string, bool) {
	for _, e := range s.TXT {
		k, v, _ := strings.Cut(e, "=")
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// avahiCommands are the programs StartAvahi needs.
var avahiCommands = []string{"avahi-daemon", "avahi-browse", "avahi-publish-service", "dbus-daemon"}

// StartAvahi starts a private dbus-daemon and avahi-daemon in the host and
// waits until the daemon has completed its startup. It skips (or fails,
// see [Require]) when Avahi or D-Bus is not installed. A host runs at most
// one Avahi.
func (h *Host) StartAvahi(t testing.TB) *Avahi {
	t.Helper()
	RequireCommands(t, avahiCommands...)
	_, err := os.Stat(avahiServiceDir)
	Require(t, "avahi-daemon's "+avahiServiceDir+" directory", err == nil)

	h.mu.Lock()
	started := h.avahi != nil
	h.mu.Unlock()
	if started {
		t.Fatalf("netns: Avahi already runs in host %s", h.Name)
	}

	// Not t.TempDir: a long test name would push the bus socket's path past
	// the 107 bytes a unix socket address holds.
	dir, err := os.MkdirTemp("", "nn-avahi-"+h.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &Avahi{
		Host:       h,
		HostName:   "avahi-" + h.Hostname,
		Dir:        dir,
		BusAddress: "unix:path=" + filepath.Join(dir, "bus"),
	}
	for _, d := range []string{"services", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"dbus.conf":  fmt.Sprintf(dbusConf, filepath.Join(dir, "bus")),
		"avahi.conf": fmt.Sprintf(avahiConf, a.HostName, yesNo(!h.IPv6Only()), yesNo(h.IPv6Only())),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The mount point the run directory is bound onto; Debian's package
	// makes it, netns.md's recipe makes sure of it.
	if err := os.MkdirAll("/run/avahi-daemon", 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	a.Bus = h.Start(t, "dbus-daemon", "--config-file="+filepath.Join(dir, "dbus.conf"),
		"--nofork", "--nopidfile", "--print-address")
	if _, err := a.Bus.WaitLine(ctx, func(l string) bool { return strings.HasPrefix(l, "unix:") }); err != nil {
		t.Fatalf("netns: start dbus-daemon in %s: %v\n%s", h.Name, err, a.Bus.Dump())
	}

	script := fmt.Sprintf("mount --bind %s %s && mount --bind %s /run/avahi-daemon && "+
		"exec avahi-daemon -f %s --no-drop-root --no-chroot --no-rlimits --no-proc-title",
		shellQuote(filepath.Join(dir, "services")), avahiServiceDir, shellQuote(filepath.Join(dir, "run")),
		shellQuote(filepath.Join(dir, "avahi.conf")))
	cmd := h.Command(context.Background(), "unshare", "-m", "--", "sh", "-c", script)
	cmd.Env = a.env()
	a.Daemon = StartCmd(t, cmd)
	if _, err := a.Daemon.WaitStderrLine(ctx, func(l string) bool {
		return strings.Contains(l, "Server startup complete")
	}); err != nil {
		t.Fatalf("netns: start avahi-daemon in %s: %v\n%s", h.Name, err, a.Daemon.Dump())
	}

	h.mu.Lock()
	h.avahi = a
	h.mu.Unlock()
	t.Cleanup(func() {
		h.mu.Lock()
		h.avahi = nil
		h.mu.Unlock()
	})
	return a
}

func (a *Avahi) env() []string {
	return append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+a.BusAddress)
}

// Avahi returns the host's running Avahi, or nil.
func (h *Host) Avahi() *Avahi {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.avahi
}

func (h *Host) needAvahi() (*Avahi, error) {
	a := h.Avahi()
	if a == nil {
		return nil, fmt.Errorf("netns: host %s: call StartAvahi first", h.Name)
	}
	return a, nil
}

// AvahiBrowse lists the services of serviceType that the host's Avahi
// resolves now: it runs `avahi-browse -rtp serviceType` in the host, which
// queries, waits for answers and resolves them, and parses its output.
// Avahi must have been started with [Host.StartAvahi].
func (h *Host) AvahiBrowse(ctx context.Context, serviceType string) ([]AvahiService, error) {
	a, err := h.needAvahi()
	if err != nil {
		return nil, err
	}
	cmd := h.Command(ctx, "avahi-browse", "-r", "-t", "-p", serviceType)
	cmd.Env = a.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: avahi-browse -rtp %s: %w: %s", h.Name, serviceType, err, strings.TrimSpace(stderr.String()))
	}
	return ParseAvahiBrowse(string(out)), nil
}

// AvahiFind browses for serviceType (see [Host.AvahiBrowse]) again and
// again, boundedly, until a service for which match returns true shows up or
// ctx ends. The error then lists what was seen.
func (h *Host) AvahiFind(ctx context.Context, serviceType string, match func(AvahiService) bool) (AvahiService, error) {
	var last []AvahiService
	for {
		services, err := h.AvahiBrowse(ctx, serviceType)
		if err != nil && ctx.Err() == nil {
			return AvahiService{}, err
		}
		for _, s := range services {
			if match(s) {
				return s, nil
			}
		}
		if services != nil {
			last = services
		}
		select {
		case <-ctx.Done():
			return AvahiService{}, fmt.Errorf("%s: Avahi found no matching %s service (last saw %+v): %w", h.Name, serviceType, last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// AvahiPublish publishes a service through the host's Avahi with
// avahi-publish-service, waits until Avahi has established it, and keeps it
// published until the test ends or the returned Proc is stopped. txt entries
// are "key=value" strings.
func (h *Host) AvahiPublish(t testing.TB, name, serviceType string, port int, txt ...string) *Proc {
	t.Helper()
	a, err := h.needAvahi()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{name, serviceType, strconv.Itoa(port)}, txt...)
	cmd := h.Command(context.Background(), "avahi-publish-service", args...)
	cmd.Env = a.env()
	p := StartCmd(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.WaitStderrLine(ctx, func(l string) bool {
		return strings.HasPrefix(l, "Established under name")
	}); err != nil {
		t.Fatalf("netns: avahi-publish-service in %s: %v\n%s", h.Name, err, p.Dump())
	}
	return p
}

// avahiServiceDir is where avahi-daemon reads static service files; in an
// Avahi's mount namespace it is the services directory under [Avahi.Dir].
const avahiServiceDir = "/etc/avahi/services"

// AddServiceFile publishes a static service group, the way a file in
// /etc/avahi/services does, rather than over D-Bus as [Host.AvahiPublish]
// does: it writes xml (a <service-group> as avahi.service(5) describes) as
// file name, which must end in ".service" and be new, in the daemon's
// services directory, has the daemon reload its static services, and waits
// until the daemon reports the group established (renamed, if another host
// holds its name: the daemon's log on [Avahi.Daemon] says so). The test
// fails if the daemon refuses the file (bad XML, or a name this daemon
// already publishes) or does not establish it within 20 seconds. The
// service stays published until the test ends.
func (a *Avahi) AddServiceFile(t testing.TB, name, xml string) {
	t.Helper()
	if name == "" || filepath.Base(name) != name || !strings.HasSuffix(name, ".service") || strings.HasPrefix(name, ".") {
		t.Fatalf("netns: AddServiceFile: bad file name %q: want NAME.service, no directory", name)
	}
	dir := filepath.Join(a.Dir, "services")
	path := filepath.Join(dir, name)
	if _, err := os.Lstat(path); err == nil {
		t.Fatalf("netns: AddServiceFile: %s already added", name)
	}
	// Written under a name the daemon ignores, then renamed, so the daemon
	// never reads half a file.
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	// The daemon may notice the file by itself (inotify); SIGHUP makes sure.
	// Reloading twice is harmless: an unchanged file is left as it is.
	if err := a.Daemon.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The daemon logs the file under the path it sees, as in "Service
	// "Name" (/etc/avahi/services/x.service) successfully established." or
	// "Failed to load service group file /etc/avahi/services/x.service,
	// ignoring." (a "parse failure" comes before that).
	seen := filepath.Join(avahiServiceDir, name)
	mentions := func(l string) bool { // this file, not one whose name it starts
		return strings.Contains(l, seen+")") || strings.Contains(l, seen+",") || strings.Contains(l, seen+":")
	}
	failed := func(l string) bool { return strings.Contains(l, "Failed") || strings.Contains(l, "parse failure") }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	line, err := a.Daemon.WaitStderrLine(ctx, func(l string) bool {
		return mentions(l) && (strings.Contains(l, "successfully established") || failed(l))
	})
	if err != nil {
		t.Fatalf("netns: Avahi in %s did not establish %s: %v\n%s", a.Host.Name, name, err, a.Daemon.Dump())
	}
	if failed(line) {
		t.Fatalf("netns: Avahi in %s: %s\n%s", a.Host.Name, line, xml)
	}
}

// ParseAvahiBrowse parses the output of `avahi-browse -p` and returns the
// resolved services ('=' lines), unescaping names and TXT entries. Other
// lines are skipped.
func ParseAvahiBrowse(out string) []AvahiService {
	var services []AvahiService
	for _, line := range strings.Split(out, "\n") {
		// =;IF;PROTO;NAME;TYPE;DOMAIN;HOST;ADDRESS;PORT;TXT. Only TXT can
		// hold a raw ';': the others are escaped.
		f := strings.SplitN(strings.TrimRight(line, "\r"), ";", 10)
		if len(f) != 10 || f[0] != "=" {
			continue
		}
		port, err := strconv.Atoi(f[8])
		if err != nil {
			continue
		}
		txt, err := parseAvahiTXT(f[9])
		if err != nil {
			continue
		}
		services = append(services, AvahiService{
			Interface: f[1],
			Protocol:  f[2],
			Name:      unescapeAvahi(f[3]),
			Type:      unescapeAvahi(f[4]),
			Domain:    unescapeAvahi(f[5]),
			Host:      unescapeAvahi(f[6]),
			Address:   f[7],
			Port:      port,
			TXT:       txt,
		})
	}
	return services
}

// unescapeAvahi undoes avahi_escape_label: "\DDD" is a byte in decimal,
// "\X" is X.
func unescapeAvahi(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if n, ok := decimalEscape(s[i+1:]); ok {
			b.WriteByte(n)
			i += 3
			continue
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func decimalEscape(s string) (byte, bool) {
	if len(s) < 3 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s[:3]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 255 {
		return 0, false
	}
	return byte(n), true
}

// parseAvahiTXT parses avahi_string_list_to_string's output: entries in
// double quotes separated by spaces, with '"' and '\' escaped by a backslash
// and other bytes outside printable ASCII as "\DDD".
func parseAvahiTXT(s string) ([]string, error) {
	var entries []string
	i := 0
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i == len(s) {
			return entries, nil
		}
		if s[i] != '"' {
			return nil, fmt.Errorf("avahi TXT: want '\"' at %d in %q", i, s)
		}
		i++
		var b strings.Builder
		for {
			if i == len(s) {
				return nil, errors.New("avahi TXT: unterminated entry in " + strconv.Quote(s))
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' && i+1 < len(s) {
				if n, ok := decimalEscape(s[i+1:]); ok {
					b.WriteByte(n)
					i += 4
					continue
				}
				b.WriteByte(s[i+1])
				i += 2
				continue
			}
			b.WriteByte(c)
			i++
		}
		entries = append(entries, b.String())
	}
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dbusConf is a system bus on a private socket that lets anyone do anything:
// only this test's processes can reach it.
const dbusConf = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

const avahiConf = `[server]
host-name=%s
use-ipv4=%s
use-ipv6=%s
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
`
