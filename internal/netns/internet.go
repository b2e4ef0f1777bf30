//go:build linux

package netns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Internet is a small internet made of one [Lab] (shared/netns.md, "A small
// internet"): the lab's bridge is home A, whose router ra (10.99.0.1) NATs
// it onto the public network; home B is a second LAN (10.2.0.0/24) behind
// router rb; both routers reach the public server srv, which routes between
// them and holds the public address [PublicAddr] for the servers a test
// runs there (coturn, a DNS server). Nothing else is routed: every address
// lives in the lab's namespaces.
//
//	a, b (10.99.0.2, .3) --bridge-- ra ==wana== srv (10.200.0.100) ==wanb== rb --lan-- c (10.2.0.2)
//	                                                                         rb --hb--- b (10.2.1.2, down until MoveToB)
//
// The NATs start as endpoint-independent mappings (nftables masquerade
// keeps ports, so hole punching works); [Internet.SetNAT] changes a
// router's behaviour.
type Internet struct {
	Lab         *Lab
	A, B, C     *Host // alice and bob in home A (bob can move to home B), carol in home B
	RA, RB, Srv *Host
	dir         string
}

// PublicAddr is the server's address on the public network.
var PublicAddr = netip.MustParseAddr("10.200.0.100")

// NAT behaviours for [Internet.SetNAT].
type NAT int

const (
	NATKeepPorts NAT = iota // masquerade keeping ports: hole punching works
	NATRandom               // ports randomised per destination: hole punching fails, a relay is needed
	NATBlockUDP             // masquerade, and no UDP forwarded at all: only TCP gets out
)

// NewInternet builds the internet (it needs root and nftables; it skips
// like [New] without them).
func NewInternet(t testing.TB) *Internet {
	t.Helper()
	RequireCommands(t, "nft")
	l := New(t, "ra", "a", "b")
	in := &Internet{Lab: l, RA: l.Host("ra"), A: l.Host("a"), B: l.Host("b"), dir: t.TempDir()}
	in.Srv, in.RB, in.C = l.AddHost("srv"), l.AddHost("rb"), l.AddHost("c")
	for _, h := range []*Host{in.Srv, in.RB, in.C} {
		// Off home A: these hosts live elsewhere.
		must(t, ipCmd("-n", h.NS, "link", "del", "eth0"))
	}
	l.Wire(in.Srv, in.RA, "wana", netip.MustParsePrefix("10.200.1.0/30"))
	l.Wire(in.Srv, in.RB, "wanb", netip.MustParsePrefix("10.200.2.0/30"))
	l.Wire(in.RB, in.C, "lan", netip.MustParsePrefix("10.2.0.0/24"))
	l.Wire(in.RB, in.B, "hb", netip.MustParsePrefix("10.2.1.0/24"))
	steps := [][]string{
		{"-n", in.Srv.NS, "addr", "add", PublicAddr.String() + "/32", "dev", "lo"},
		// The rest of the internet: a sink. A relay sending to a peer's
		// private address must see it vanish, as on the real internet,
		// not get ENETUNREACH (which makes coturn end the allocation).
		{"-n", in.Srv.NS, "link", "add", "sink", "type", "veth", "peer", "name", "sink-srv", "netns", l.BridgeNS()},
		{"-n", l.BridgeNS(), "link", "set", "sink-srv", "up"},
		{"-n", in.Srv.NS, "link", "set", "sink", "up"},
		{"-n", in.Srv.NS, "neigh", "add", "10.200.255.1", "lladdr", "02:00:00:00:00:01", "dev", "sink", "nud", "permanent"},
		{"-n", in.Srv.NS, "route", "add", "default", "via", "10.200.255.1", "dev", "sink", "onlink"},
		{"-n", in.RA.NS, "route", "add", "default", "via", "10.200.1.1"},
		{"-n", in.RB.NS, "route", "add", "default", "via", "10.200.2.1"},
		{"-n", in.A.NS, "route", "add", "default", "via", "10.99.0.1"},
		{"-n", in.B.NS, "route", "add", "default", "via", "10.99.0.1"},
		{"-n", in.C.NS, "route", "add", "default", "via", "10.2.0.1"},
		{"-n", in.B.NS, "link", "set", "hb", "down"},
	}
	for _, args := range steps {
		must(t, ipCmd(args...))
	}
	for _, h := range []*Host{in.Srv, in.RA, in.RB} {
		must(t, ipCmd("netns", "exec", h.NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
	}
	in.SetNAT(t, in.RA, NATKeepPorts)
	in.SetNAT(t, in.RB, NATKeepPorts)
	return in
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("netns: internet: %v", err)
	}
}

// SetNAT sets router r's (RA or RB) NAT behaviour, replacing its rules.
// Connections it already tracks keep their mapping. A router drops what
// arrives unasked from the public side before connection tracking keeps
// it: a tracked inbound flow would take the port that the home's own
// packet to the same peer needs a moment later, and the NAT would then
// give that packet another port (what a home router's firewall avoids).
func (in *Internet) SetNAT(t testing.TB, r *Host, mode NAT) {
	t.Helper()
	wan, lan := "wana", "eth0"
	if r == in.RB {
		wan, lan = "wanb", "lan"
	}
	masq := "masquerade"
	if mode == NATRandom {
		masq = "masquerade random,fully-random"
	}
	// The home behind rb has two links (lan for carol, hb for bob).
	lanMatch := fmt.Sprintf("iifname %q", lan)
	if r == in.RB {
		lanMatch = `iifname { "lan", "hb" }`
	}
	var fwd strings.Builder
	if mode == NATBlockUDP {
		fmt.Fprintf(&fwd, "    %s meta l4proto udp drop\n", lanMatch)
	}
	fwd.WriteString("    ct state established,related accept\n")
	fmt.Fprintf(&fwd, "    %s oifname %q accept\n", lanMatch, wan)
	rules := fmt.Sprintf(`flush ruleset
table ip nat {
  chain c_post {
    type nat hook postrouting priority 100;
    oifname %q %s
  }
}
table ip filter {
  chain c_fwd {
    type filter hook forward priority 0; policy drop;
%s  }
  chain c_in {
    type filter hook input priority 0;
    iifname %q ct state new drop
  }
}
`, wan, masq, fwd.String(), wan)
	f := filepath.Join(in.dir, r.Name+".nft")
	must(t, os.WriteFile(f, []byte(rules), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", r.NS, "nft", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("netns: nft on %s: %v: %s", r.Name, err, out)
	}
}

// MoveToB takes bob off home A (his eth0 loses its link) and plugs him
// into home B (link hb, 10.2.1.2, default route via rb), as when a laptop
// leaves one network for another.
func (in *Internet) MoveToB() error {
	for _, args := range [][]string{
		{"-n", in.Lab.BridgeNS(), "link", "set", "v-b", "down"},
		{"-n", in.B.NS, "link", "set", "eth0", "down"},
		{"-n", in.B.NS, "link", "set", "hb", "up"},
		{"-n", in.B.NS, "route", "replace", "default", "via", "10.2.1.1"},
	} {
		if err := ipCmd(args...); err != nil {
			return err
		}
	}
	return nil
}

// MoveToA brings bob back home: hb down, eth0 up on home A again.
func (in *Internet) MoveToA() error {
	for _, args := range [][]string{
		{"-n", in.B.NS, "link", "set", "hb", "down"},
		{"-n", in.Lab.BridgeNS(), "link", "set", "v-b", "up"},
		{"-n", in.B.NS, "link", "set", "eth0", "up"},
		{"-n", in.B.NS, "route", "replace", "default", "via", "10.99.0.1"},
	} {
		if err := ipCmd(args...); err != nil {
			return err
		}
	}
	return nil
}

// TURN is coturn running on the public server.
type TURN struct {
	Proc     *Proc // the running coturn (a new one after [TURN.Start])
	User     string
	Password string
	CAFile   string // the PEM certificate of the CA of its TLS certificate ([Internet.StartTURNTLS])
	in       *Internet
	conf     string
	owner    testing.TB // the test that started it: a coturn started again lives until it ends
}

// StartTURN runs coturn on srv at PublicAddr port 3478 (UDP and TCP),
// long-term credentials user:password, relay ports 49152-49999, and
// counts the bytes it relays (see [TURN.RelayedBytes]). It is stopped when
// the test ends.
func (in *Internet) StartTURN(t testing.TB, user, password string) *TURN {
	t.Helper()
	return in.startTURN(t, user, password, "no-tls\n")
}

// StartTURNTLS is [Internet.StartTURN] with TURN over TLS too (turns:,
// port 5349), its certificate for PublicAddr signed by a CA made for the
// test, whose certificate is in [TURN.CAFile]: clients need it among
// their roots (SSL_CERT_FILE for Go's system roots).
func (in *Internet) StartTURNTLS(t testing.TB, user, password string) *TURN {
	t.Helper()
	caFile, certPEM, keyPEM := testCA(t, in.dir, PublicAddr)
	cert, key := filepath.Join(in.dir, "turn.crt"), filepath.Join(in.dir, "turn.key")
	must(t, os.WriteFile(cert, certPEM, 0o600))
	must(t, os.WriteFile(key, keyPEM, 0o600))
	tu := in.startTURN(t, user, password, fmt.Sprintf("tls-listening-port=5349\ncert=%s\npkey=%s\n", cert, key))
	tu.CAFile = caFile
	return tu
}

func (in *Internet) startTURN(t testing.TB, user, password, tlsConf string) *TURN {
	t.Helper()
	RequireCommands(t, "turnserver")
	conf := fmt.Sprintf(`listening-ip=%[1]s
relay-ip=%[1]s
listening-port=3478
min-port=49152
max-port=49999
realm=nearnet.test
lt-cred-mech
user=%[2]s:%[3]s
%[5]sno-dtls
no-cli
no-multicast-peers
allow-loopback-peers
pidfile=%[4]s/turnserver.pid
userdb=%[4]s/turndb
log-file=stdout
simple-log
`, PublicAddr, user, password, in.dir, tlsConf)
	f := filepath.Join(in.dir, "turnserver.conf")
	must(t, os.WriteFile(f, []byte(conf), 0o600))
	counters := fmt.Sprintf(`table ip relaycount {
  counter relayed { }
  chain c_in {
    type filter hook input priority 0;
    ip daddr %[1]s udp dport 49152-49999 counter name relayed
  }
  chain c_out {
    type filter hook output priority 0;
    ip saddr %[1]s udp sport 49152-49999 counter name relayed
  }
}
`, PublicAddr)
	cf := filepath.Join(in.dir, "relaycount.nft")
	must(t, os.WriteFile(cf, []byte(counters), 0o600))
	if _, err := in.Srv.Run(context.Background(), "nft", "-f", cf); err != nil {
		t.Fatalf("netns: relay counter: %v", err)
	}
	tu := &TURN{User: user, Password: password, in: in, conf: f, owner: t}
	tu.Start(t)
	return tu
}

// Start runs coturn (again, after [TURN.Stop]) with its configuration, and
// waits until it listens; t (the test calling, maybe a subtest of the one
// that called StartTURN) fails if it cannot. It is killed when the test
// that called StartTURN ends.
func (tu *TURN) Start(t testing.TB) {
	t.Helper()
	p, err := startCmd(tu.in.Srv.Command(context.Background(), "turnserver", "-c", tu.conf))
	if err != nil {
		t.Fatalf("netns: start coturn: %v", err)
	}
	tu.owner.Cleanup(func() { p.cleanup(tu.owner) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.WaitLine(ctx, func(l string) bool {
		return strings.Contains(l, "Total General servers") || strings.Contains(l, "IPv4. TCP listener opened on")
	}); err != nil {
		t.Fatalf("netns: coturn did not start: %v\n%s", err, p.Dump())
	}
	tu.Proc = p
}

// Stop ends coturn (SIGTERM, then SIGKILL after 10 s), as when the server
// goes down: its allocations are gone. [TURN.Start] runs it again.
func (tu *TURN) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := tu.Proc.Stop(ctx)
	if _, ok := tu.Proc.ExitCode(); ok {
		return nil // it exited, by the signal or by itself
	}
	return err
}

// Freeze stops coturn's process (SIGSTOP) without ending it, as a server
// cut off the network for a while: it answers nothing and relays nothing,
// and keeps its allocations. [TURN.Thaw] lets it go on.
func (tu *TURN) Freeze() error { return tu.Proc.Signal(syscall.SIGSTOP) }

// Thaw lets a frozen coturn go on (SIGCONT).
func (tu *TURN) Thaw() error { return tu.Proc.Signal(syscall.SIGCONT) }

// RelayedBytes returns the bytes that went through coturn's relay ports
// so far, both ways.
func (tu *TURN) RelayedBytes(ctx context.Context) (int64, error) {
	out, err := tu.in.Srv.Run(ctx, "nft", "list", "counter", "ip", "relaycount", "relayed")
	if err != nil {
		return 0, err
	}
	i := strings.Index(out, "bytes ")
	if i < 0 {
		return 0, fmt.Errorf("netns: no byte count in %q", out)
	}
	var n int64
	_, err = fmt.Sscan(out[i+len("bytes "):], &n)
	return n, err
}

// DualHomeB gives bob a second uplink, as a phone has Wi-Fi and mobile
// data: his link to home B (hb) comes up and becomes his default route,
// while home A stays his LAN (10.99.0.0/24, on eth0). Cutting eth0
// ([Host.LinkDown]) then leaves him reachable beyond the LAN only.
func (in *Internet) DualHomeB() error {
	for _, args := range [][]string{
		{"-n", in.B.NS, "link", "set", "hb", "up"},
		{"-n", in.B.NS, "route", "replace", "default", "via", "10.2.1.1"},
	} {
		if err := ipCmd(args...); err != nil {
			return err
		}
	}
	return nil
}

// testCA makes a CA (its certificate in dir/ca.pem) and a certificate it
// signs for ip, returned as PEM with its key.
func testCA(t testing.TB, dir string, ip netip.Addr) (caFile string, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nearnet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{ip.AsSlice()},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
