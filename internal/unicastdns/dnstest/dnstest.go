// Package dnstest runs BIND9's named as a real authoritative DNS server for
// tests: one zone, updates allowed with one TSIG key.
//
// [Write] makes the configuration, zone file and key file in a directory
// and returns a [*Server] describing them; start named with [Server.Args]
// (in a network namespace, with netns's Host.Start) or with [Server.Run]
// (in the current namespace), then wait for it with [Server.Wait]. named
// comes from Debian's bind9 package.
package dnstest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/unicastdns"
)

// KeyName is the name of the TSIG key the server accepts updates with.
const KeyName = "nearnet-update"

// Options describe the server to write.
type Options struct {
	Dir     string         // where the files go; required
	Zone    string         // e.g. "nearnet.test"; if empty, "nearnet.test"
	Listen  netip.AddrPort // the address named listens on (UDP and TCP); if zero, 127.0.0.1 and a free port
	Records []string       // extra zone file lines, e.g. "host IN A 10.0.0.1"
}

// Server is a written configuration, and the running named once started.
type Server struct {
	Dir     string
	Zone    string         // without the trailing dot
	Addr    netip.AddrPort // where named listens
	Key     unicastdns.Key // the key updates are allowed with
	KeyFile string         // the key in BIND's format (mode 0600)
	Conf    string         // named.conf

	cmd  *exec.Cmd
	done chan struct{}
}

// Write writes named.conf, the zone file (SOA, NS, the name server's A
// record, and the DNS-SD browse-domain records b and lb._dns-sd._udp
// pointing at the zone) and the key file into o.Dir.
func Write(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("dnstest: Options.Dir is required")
	}
	if o.Zone == "" {
		o.Zone = "nearnet.test"
	}
	o.Zone = strings.TrimSuffix(o.Zone, ".")
	if !o.Listen.IsValid() {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		o.Listen = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	s := &Server{
		Dir:     o.Dir,
		Zone:    o.Zone,
		Addr:    o.Listen,
		Key:     unicastdns.Key{Name: KeyName, Algorithm: "hmac-sha256", Secret: secret},
		KeyFile: filepath.Join(o.Dir, "tsig.key"),
		Conf:    filepath.Join(o.Dir, "named.conf"),
	}
	key := fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", KeyName, base64.StdEncoding.EncodeToString(secret))
	if err := os.WriteFile(s.KeyFile, []byte(key), 0o600); err != nil {
		return nil, err
	}
	ip := o.Listen.Addr().String()
	listen := fmt.Sprintf("listen-on port %d { %s; }; listen-on-v6 { none; };", o.Listen.Port(), ip)
	if o.Listen.Addr().Is6() {
		listen = fmt.Sprintf("listen-on { none; }; listen-on-v6 port %d { %s; };", o.Listen.Port(), ip)
	}
	conf := fmt.Sprintf(`include %q;
options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	%s
	recursion no;
	dnssec-validation no;
	notify no;
	allow-transfer { none; };
};
controls { };
zone %q {
	type primary;
	file "db.zone";
	allow-update { key %s; };
};
`, s.KeyFile, o.Dir, filepath.Join(o.Dir, "named.pid"), filepath.Join(o.Dir, "session.key"), listen, o.Zone, KeyName)
	if err := os.WriteFile(s.Conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	nsAddr := "127.0.0.1"
	if o.Listen.Addr().Is4() {
		nsAddr = ip
	}
	zone := fmt.Sprintf(`$ORIGIN %s.
$TTL 60
@ IN SOA ns hostmaster 1 60 30 600 5
@ IN NS ns
ns IN A %s
b._dns-sd._udp IN PTR @
lb._dns-sd._udp IN PTR @
%s
`, o.Zone, nsAddr, strings.Join(o.Records, "\n"))
	if err := os.WriteFile(filepath.Join(o.Dir, "db.zone"), []byte(zone), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// Args returns named's command line after the program name: in the
// foreground, logging to stderr, one worker thread, as root.
func (s *Server) Args() []string {
	return []string{"-g", "-n", "1", "-u", "root", "-c", s.Conf}
}

// Run starts named in the current network namespace. Stop it with
// [Server.Close].
func (s *Server) Run(ctx context.Context) error {
	cmd := exec.Command("named", s.Args()...)
	cmd.Stdout = nil
	log, err := os.Create(filepath.Join(s.Dir, "named.log"))
	if err != nil {
		return err
	}
	cmd.Stderr = log
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("dnstest: start named: %w", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(s.done)
	}()
	if err := s.Wait(ctx); err != nil {
		s.Close()
		return fmt.Errorf("%w\nnamed's log:\n%s", err, s.Log())
	}
	return nil
}

// Log returns what named logged so far (with [Server.Run]).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "named.log"))
	return string(b)
}

// Close stops a named started by [Server.Run] and waits for it to exit.
func (s *Server) Close() error {
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

// Wait waits until the server answers a query for the zone's SOA record, or
// ctx ends. It must run where the server's address is reachable (in a
// namespace, from inside netns's Host.Do).
func (s *Server) Wait(ctx context.Context) error {
	c, err := unicastdns.New(unicastdns.Config{Server: s.Addr.String(), Timeout: 500 * time.Millisecond, Attempts: 1})
	if err != nil {
		return err
	}
	for {
		rrs, err := c.Query(ctx, s.Zone, dns.TypeSOA)
		if err == nil && len(rrs) > 0 {
			return nil
		}
		if s.done != nil {
			select {
			case <-s.done:
				return errors.New("dnstest: named exited")
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dnstest: named at %s does not answer: %w (last: %v)", s.Addr, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Config returns a client configuration for the server with its key.
func (s *Server) Config() unicastdns.Config {
	return unicastdns.Config{Server: s.Addr.String(), Zone: s.Zone, Key: s.Key}
}

func freePort() (uint16, error) {
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		tl, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			tl.Close()
			return uint16(port), nil
		}
	}
	return 0, errors.New("dnstest: no free port")
}
