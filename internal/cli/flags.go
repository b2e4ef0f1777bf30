package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/proxy"
	"github.com/nearnet/nearnet/security"
)

// globals are the flags every subcommand accepts after its name. A
// subcommand that has no use for one (keygen and --port, say) accepts and
// ignores it, so scripts can pass one set of flags everywhere.
type globals struct {
	service    string
	name       string
	interfaces stringList
	port       portValue
	keyFile    string
	trust      fingerprintList
	insecure   bool
	knownPeers string
	tofu       bool
	identity   string
	json       bool
	proxy      string
	proxyEnv   bool
	transport  transportValue
	wide       wideArea // --domain and its companions (widearea.go)
	turn       urlList  // ICE servers (--turn)
	turnCreds  string   // --turn-credentials
	tun        tunFlags // --tun, --tun-addr, --tun-multicast, --tun-with-host (tunnel.go)

	dropTime     durationValue
	resumeWindow durationValue
	keepalive    durationValue

	set map[string]bool // flags given on the command line
}

// flagSet is a subcommand's flags: its own plus the globals.
type flagSet struct {
	*flag.FlagSet
	cmd     string
	g       *globals
	global  map[string]bool // names of the global flags, for the usage text
	summary string

	// positional, if set, names the arguments the command takes after
	// its flags (proxy-rank: "URL"); flags may come between them. Without
	// it the command takes flags only.
	positional string
	args       []string // the positional arguments, after parse

	// used, if set, names the only global flags the command reads; its
	// usage lists just those (the rest are still accepted and ignored).
	used map[string]bool
}

// uses declares the only global flags the command reads (keygen: --json),
// so that its -h does not list thirty that do not apply to it.
func (fs *flagSet) uses(names ...string) {
	fs.used = map[string]bool{}
	for _, n := range names {
		fs.used[n] = true
	}
}

func newFlagSet(cmd string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(cmd, flag.ContinueOnError), cmd: cmd, g: &globals{}, global: map[string]bool{}}
	fs.SetOutput(io.Discard) // errors are returned, usage printed by parse
	fs.Usage = func() {}
	g := fs.g
	fs.StringVar(&g.service, "service", nearnet.DefaultService, "DNS-SD service `TYPE` to advertise and browse (\"_name._tcp\")")
	fs.StringVar(&g.name, "name", "", "instance `NAME` to advertise and send to peers (default \"nearnet-\" and the peer ID's first 8 digits)")
	fs.Var(&g.interfaces, "interface", "network interface `IF` to discover on (repeatable; default: every multicast interface but loopback; \"lo\" for loopback)")
	fs.Var(&g.port, "port", "port `N` to listen on, 0-65535: TCP, and UDP for QUIC (default 0: chosen by the system)")
	fs.StringVar(&g.keyFile, "key-file", "", "security: pre-shared key file `PATH` (see nearnet keygen)")
	fs.Var(&g.trust, "trust", "security: trust the peer identity `FINGERPRINT` (sha256:..., see nearnet id; repeatable)")
	fs.BoolVar(&g.insecure, "insecure", false, "security: none; no TLS, no authentication, no encryption")
	fs.StringVar(&g.knownPeers, "known-peers", "", "security: trust the identities listed in the known-peers file `PATH`")
	fs.BoolVar(&g.tofu, "tofu", false, "with --known-peers: trust unknown peers on first use and add them to the file")
	fs.StringVar(&g.identity, "identity", "", "identity file `PATH`, created if absent (default: a new identity each run)")
	fs.BoolVar(&g.json, "json", false, "print one JSON object per line, with an \"event\" field")
	fs.StringVar(&g.proxy, "proxy", "", "dial peers through the HTTP CONNECT or SOCKS5 proxy `URL` (http://user:pass@host:port, https://, socks5://, socks5h://); "+
		"discovery does not cross proxies, so name peers with chat --to host:port")
	fs.BoolVar(&g.proxyEnv, "proxy-env", false, "dial peers through the proxy in HTTPS_PROXY or ALL_PROXY, honouring NO_PROXY (loopback is never proxied); "+
		"discovery does not cross proxies, so name peers with chat --to host:port")
	g.dropTime = durationValue(nearnet.DefaultDropTime)
	g.resumeWindow = durationValue(nearnet.DefaultResumeWindow)
	g.keepalive = durationValue(nearnet.DefaultKeepAliveIdle)
	fs.Var(&g.dropTime, "drop-time", "drop a transport connection after `D` without an answer; a peer whose host is gone is reported disconnected within about this long")
	fs.Var(&g.resumeWindow, "resume-window", "keep a connection whose transport broke for `D`, waiting for a new one, before reporting it disconnected with the undelivered messages; 0 turns resume off")
	fs.Var(&g.keepalive, "keepalive", "ping a peer silent for `D`, then every D/2; unanswered pings make the connection inviable")
	fs.Var(&g.turn, "turn", "STUN or TURN server `URL` for paths beyond the LAN (stun:host:port, turn:host:port[?transport=tcp], turns:host:port; repeatable): "+
		"a session resumes through NATs or the relay when the LAN path goes, and returns to the LAN when it comes back")
	fs.StringVar(&g.turnCreds, "turn-credentials", "", "file `PATH` holding the TURN servers' long-term credentials, one line username:password (mode 600)")
	fs.Var(&g.transport, "transport", "transport `T`: quic, tcp (WebSocket over TLS over TCP) or auto (offer both on one port, dial TCP first, then QUIC)")
	g.wide.addFlags(fs)
	fs.addTunFlags()
	fs.VisitAll(func(f *flag.Flag) { fs.global[f.Name] = true })
	return fs
}

// resumeHelp tells how the connection commands behave through a network
// blip; their help texts include it.
const resumeHelp = `Through a network blip (Wi-Fi drops, a cable is pulled, an address
changes) a connection stays open: an inviable event says traffic stopped
getting through (after --keepalive pings went unanswered, the link or
address went, or the transport broke), messages sent meanwhile are kept, the
side that dialed reconnects, and reconnected and viable events follow;
nothing is lost or repeated. A connection that does not come back within
--resume-window ends with a disconnected event whose undelivered field lists
the messages the peer never got. A peer whose process ended is reported
disconnected within --drop-time.`

// parse parses args. It prints the usage to e.stdout and returns errHelp
// for -h; any other mistake is a *UsageError naming the flag.
func (fs *flagSet) parse(e *env, args []string) error {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(e.stdout)
				return errHelp
			}
			return fs.usageError(dashes(err.Error()))
		}
		if fs.NArg() == 0 {
			break
		}
		if fs.positional == "" {
			return fs.usageError(fmt.Sprintf("unexpected argument %q: this command takes only flags", fs.Arg(0)))
		}
		// Flags may follow an argument: take it and parse the rest (each
		// round takes one argument, so this ends).
		fs.args = append(fs.args, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.g.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { fs.g.set[f.Name] = true })
	fs.g.wide.stderr = e.stderr
	if fs.g.tofu && fs.g.knownPeers == "" {
		return fs.usageError("--tofu needs --known-peers PATH: it records the peers it trusts there")
	}
	if fs.g.proxy != "" && fs.g.proxyEnv {
		return fs.usageError("--proxy and --proxy-env each choose the proxy: give one")
	}
	if fs.g.transport.t == nearnet.TransportQUIC && (fs.g.proxy != "" || fs.g.proxyEnv) {
		return fs.usageError("--transport quic cannot go through a proxy: use --transport tcp or auto with --proxy")
	}
	if err := fs.checkTun(); err != nil {
		return err
	}
	if fs.g.proxy != "" {
		// The error text never holds the password (proxy.URLError).
		if _, err := proxy.Parse(fs.g.proxy); err != nil {
			return fs.usageError("invalid --proxy: " + strings.TrimPrefix(err.Error(), "proxy: "))
		}
	}
	return nil
}

func (fs *flagSet) usageError(msg string) error {
	return &UsageError{Msg: fmt.Sprintf("%s: %s (see 'nearnet %s -h')", fs.cmd, msg, fs.cmd)}
}

func (fs *flagSet) printUsage(w io.Writer) {
	c := commands[fs.cmd]
	tail := "[global flags]"
	if fs.used != nil {
		tail = "[flags]"
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.Join(strings.Fields("nearnet "+fs.cmd+" "+c.synopsis+" "+tail), " "), c.summary)
	if fs.summary != "" {
		fmt.Fprintf(w, "\n%s\n", fs.summary)
	}
	own := false
	fs.VisitAll(func(f *flag.Flag) { own = own || !fs.global[f.Name] || fs.used[f.Name] })
	if fs.used != nil {
		if own {
			fmt.Fprintf(w, "\nflags:\n")
			fs.printFlags(w, false)
		}
		fmt.Fprintf(w, "\nThe global flags of the other commands are accepted and ignored.\n")
		return
	}
	if own {
		fmt.Fprintf(w, "\nflags:\n")
		fs.printFlags(w, false)
	}
	fmt.Fprintf(w, "\nglobal flags (security: exactly one of --key-file, --trust, --known-peers, --insecure\nfor commands that connect):\n")
	fs.printFlags(w, true)
}

func (fs *flagSet) printFlags(w io.Writer, global bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if fs.global[f.Name] && !fs.used[f.Name] != global {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		fmt.Fprintf(w, "  --%s\n    \t%s", strings.TrimSpace(f.Name+" "+arg), usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && !strings.Contains(usage, "default") {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// flagNameRE finds flag names in the flag package's messages, which spell
// them with one dash; this command documents two.
var flagNameRE = regexp.MustCompile(`((?:flag|for)(?: provided but not defined:| needs an argument:)? )--?([A-Za-z][\w-]*)`)

func dashes(msg string) string { return flagNameRE.ReplaceAllString(msg, "$1--$2") }

// securityChoices lists the security flags given, by their flag names.
func (g *globals) securityChoices() []string {
	var chosen []string
	if g.set["key-file"] {
		chosen = append(chosen, "--key-file")
	}
	if g.set["trust"] {
		chosen = append(chosen, "--trust")
	}
	if g.set["known-peers"] {
		chosen = append(chosen, "--known-peers")
	}
	if g.insecure {
		chosen = append(chosen, "--insecure")
	}
	return chosen
}

// errNoSecurity is what a command that connects says without a security flag.
const errNoSecurity = "no security mode chosen: pass --key-file PATH (a pre-shared key from nearnet keygen), " +
	"--trust FINGERPRINT (a pinned peer identity, from nearnet id) or --known-peers PATH [--tofu], " +
	"or --insecure to run without encryption or authentication"

// config builds the node configuration from the flags. With needSecurity
// (commands that connect), exactly one security choice must be given;
// otherwise none is allowed too, and the node runs with SecurityNone (it
// never connects: browse).
func (fs *flagSet) config(needSecurity bool) (*nearnet.Config, error) {
	g := fs.g
	cfg := &nearnet.Config{Name: g.name, Service: g.service, Interfaces: g.interfaces,
		Proxy: g.proxy, ProxyFromEnvironment: g.proxyEnv, Transport: g.transport.t}
	if err := fs.resumeConfig(cfg); err != nil {
		return nil, err
	}
	if err := g.wide.apply(fs, cfg); err != nil {
		return nil, err
	}
	if g.port.set {
		// No host: the library binds all addresses, or loopback only when
		// every --interface is a loopback interface.
		cfg.ListenAddr = ":" + strconv.Itoa(g.port.n)
	}
	chosen := g.securityChoices()
	switch {
	case len(chosen) > 1:
		return nil, fs.usageError(strings.Join(chosen, " and ") + " each choose a security mode: give exactly one")
	case len(chosen) == 0 && needSecurity:
		return nil, fs.usageError(errNoSecurity)
	case len(chosen) == 0 || g.insecure:
		cfg.Security = nearnet.SecurityNone
		if g.identity != "" && g.insecure {
			return nil, fs.usageError("--identity has no effect with --insecure, which uses no TLS and so no identity")
		}
	case g.keyFile != "":
		k, err := security.LoadKeyFile(g.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--key-file: %s", errText(err))
		}
		cfg.Key = &k
	case len(g.trust) > 0:
		cfg.Trust = g.trust
	default:
		cfg.KnownPeersFile, cfg.TrustOnFirstUse = g.knownPeers, g.tofu
	}
	if err := fs.iceConfig(cfg); err != nil {
		return nil, err
	}
	if g.identity != "" {
		id, err := security.LoadOrCreateIdentity(g.identity)
		if err != nil {
			return nil, fmt.Errorf("--identity: %s", errText(err))
		}
		cfg.Identity = id
	}
	if err := fs.openTunnel(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// iceConfig sets cfg.ICEServers from --turn and --turn-credentials.
func (fs *flagSet) iceConfig(cfg *nearnet.Config) error {
	g := fs.g
	var user, pass string
	if g.turnCreds != "" {
		var err error
		if user, pass, err = security.LoadTURNCredentials(g.turnCreds); err != nil {
			return fmt.Errorf("--turn-credentials: %s", errText(err))
		}
	}
	for _, u := range g.turn {
		s := nearnet.ICEServer{URL: u}
		if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
			if g.turnCreds == "" {
				return fs.usageError("--turn " + u + " needs --turn-credentials PATH (a file with username:password)")
			}
			s.Username, s.Password = user, pass
		}
		cfg.ICEServers = append(cfg.ICEServers, s)
	}
	return nil
}

// newNode makes a node from cfg, reporting an invalid field as the flag
// that set it.
func (fs *flagSet) newNode(cfg *nearnet.Config) (*nearnet.Node, error) {
	n, err := nearnet.NewNode(cfg)
	var ce *nearnet.ConfigError
	if errors.As(err, &ce) {
		flagName := map[string]string{
			"Config.Name":           "--name",
			"Config.Service":        "--service",
			"Config.ListenAddr":     "--port",
			"Config.KnownPeersFile": "--known-peers",
			"Config.Proxy":          "--proxy",
			"Config.DropTime":       "--drop-time",
			"Config.ResumeWindow":   "--resume-window",
			"Config.KeepAliveIdle":  "--keepalive",
			"Config.ICEServers":     "--turn",
		}[ce.Field]
		if f, ok := wideAreaFlags[ce.Field]; ok {
			flagName = f
		}
		if flagName == "--known-peers" {
			return nil, fmt.Errorf("--known-peers: %s", ce.Reason)
		}
		if flagName != "" {
			return nil, fs.usageError(fmt.Sprintf("invalid %s %q: %s", flagName, fmt.Sprint(ce.Value), ce.Reason))
		}
	}
	return n, err
}

// resumeConfig maps --drop-time, --resume-window and --keepalive to cfg,
// checking what the library would report in terms of its own fields.
func (fs *flagSet) resumeConfig(cfg *nearnet.Config) error {
	g := fs.g
	drop, window, ka := time.Duration(g.dropTime), time.Duration(g.resumeWindow), time.Duration(g.keepalive)
	switch {
	case ka < 20*time.Millisecond || ka > time.Hour:
		return fs.usageError(fmt.Sprintf("invalid --keepalive %v: must be 20ms to 1h", ka))
	case drop <= ka || drop > 24*time.Hour:
		return fs.usageError(fmt.Sprintf("invalid --drop-time %v: must be longer than --keepalive (%v), at most 24h", drop, ka))
	case window > 24*time.Hour:
		return fs.usageError(fmt.Sprintf("invalid --resume-window %v: must be at most 24h (0: off)", window))
	}
	cfg.KeepAliveIdle, cfg.KeepAliveInterval = ka, ka/2
	cfg.DropTime, cfg.ResumeWindow = drop, window
	if window == 0 {
		cfg.ResumeWindow = -1 // off; the library's zero means its default
	}
	return nil
}

// urlList is a repeatable flag of URLs, checked by the library.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// stringList is a repeatable flag of interface names.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	if _, err := net.InterfaceByName(s); err != nil {
		var names []string
		if ifs, err := net.Interfaces(); err == nil {
			for _, ifi := range ifs {
				names = append(names, ifi.Name)
			}
		}
		return fmt.Errorf("no such interface (this host has: %s)", strings.Join(names, ", "))
	}
	if !slices.Contains(*l, s) {
		*l = append(*l, s)
	}
	return nil
}

// fingerprintList is the repeatable --trust flag.
type fingerprintList []security.Fingerprint

func (l *fingerprintList) String() string {
	var s []string
	for _, f := range *l {
		s = append(s, f.String())
	}
	return strings.Join(s, ",")
}

func (l *fingerprintList) Set(s string) error {
	f, err := security.ParseFingerprint(s)
	if err != nil {
		var pe *security.ParseError
		if errors.As(err, &pe) {
			return errors.New(pe.Reason)
		}
		return err
	}
	*l = append(*l, f)
	return nil
}

// portValue is --port: 0-65535, and whether it was given.
type portValue struct {
	n   int
	set bool
}

func (p *portValue) String() string { return strconv.Itoa(p.n) }

func (p *portValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("must be a port number, 0-65535")
	}
	p.n, p.set = n, true
	return nil
}

// durationValue is a duration flag that must not be negative.
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New(`must be a duration such as "500ms", "5s" or "1m"`)
	}
	if v < 0 {
		return errors.New("must not be negative")
	}
	*d = durationValue(v)
	return nil
}

// transportValue is --transport: "auto" (the default), "tcp" or "quic".
type transportValue struct{ t nearnet.Transport }

func (v *transportValue) String() string { return v.t.String() }

func (v *transportValue) Set(s string) error {
	t, err := nearnet.ParseTransport(s)
	if err != nil {
		return errors.New(`must be "quic", "tcp" or "auto"`)
	}
	v.t = t
	return nil
}
