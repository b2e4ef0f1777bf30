package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/discovery"
)

// wideArea holds the wide-area discovery flags (Config.Domain and its
// companions), global like the others.
type wideArea struct {
	domain  string
	server  string
	tsig    string
	keyFile string
	refresh durationValue

	stderr io.Writer // set by parse: where registration trouble is reported
}

func (w *wideArea) addFlags(fs *flagSet) {
	fs.StringVar(&w.domain, "domain", "", "also register in and browse the wide-area DNS-SD `DOMAIN` (unicast DNS, e.g. example.test); needs --dns-server")
	fs.StringVar(&w.server, "dns-server", "", "with --domain: the domain's authoritative DNS server `ADDR` (host:port, port 53 if omitted)")
	fs.StringVar(&w.keyFile, "dns-key", "", "with --domain: register with the TSIG key in file `PATH` (as tsig-keygen writes it, mode 0600); without a key the node only browses the domain")
	fs.StringVar(&w.tsig, "tsig", "", "with --domain: register with the TSIG key `NAME:ALG:BASE64` (visible to other users in the process list: prefer --dns-key)")
	fs.Var(&w.refresh, "dns-refresh", "with --domain: refresh the registration and poll the domain every `D` (default 30s); a node that stops refreshing disappears after 3 D")
}

// apply sets cfg's wide-area fields from the flags. doctor checks the
// link's interfaces one by one with hidden nodes: it accepts the flags and
// ignores them, as commands do with the global flags they have no use for.
func (w *wideArea) apply(fs *flagSet, cfg *nearnet.Config) error {
	if fs.cmd == "doctor" {
		return nil
	}
	set := fs.g.set
	switch {
	case w.domain == "" && (set["dns-server"] || set["dns-key"] || set["tsig"] || set["dns-refresh"]):
		return fs.usageError("--dns-server, --dns-key, --tsig and --dns-refresh need --domain")
	case w.domain != "" && w.server == "":
		return fs.usageError("--domain needs --dns-server ADDR, the domain's authoritative DNS server")
	case w.tsig != "" && w.keyFile != "":
		return fs.usageError("--tsig and --dns-key each give the TSIG key: give one")
	}
	cfg.Domain, cfg.DNSServer, cfg.DNSRefresh = w.domain, w.server, time.Duration(w.refresh)
	switch {
	case w.keyFile != "":
		k, err := discovery.LoadTSIGKeyFile(w.keyFile)
		if err != nil {
			return fmt.Errorf("--dns-key: %s", errText(err))
		}
		cfg.TSIGKey = k
	case w.tsig != "":
		k, err := discovery.ParseTSIGKey(w.tsig)
		if err != nil {
			return fs.usageError("invalid --tsig: " + errText(err))
		}
		cfg.TSIGKey = k
	}
	if !cfg.TSIGKey.IsZero() && w.stderr != nil {
		every := time.Duration(w.refresh)
		if every == 0 {
			every = discovery.DefaultWideAreaRefresh
		}
		domain, stderr := w.domain, w.stderr
		cfg.OnWideArea = func(err error) {
			if err != nil {
				fmt.Fprintf(stderr, "nearnet: registration in %s failing, retrying every %v: %s\n", domain, every, errText(err))
			} else {
				fmt.Fprintf(stderr, "nearnet: registered in %s again\n", domain)
			}
		}
	}
	return nil
}

// wideAreaFlags maps the Config fields to the flags that set them.
var wideAreaFlags = map[string]string{
	"Config.Domain":     "--domain",
	"Config.DNSServer":  "--dns-server",
	"Config.TSIGKey":    "--dns-key/--tsig",
	"Config.DNSRefresh": "--dns-refresh",
}
