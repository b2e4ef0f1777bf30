package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/discovery"
)

// runDoctor checks, interface by interface, what nearnet needs to find and
// reach peers, and says what to do where a check fails:
//
//   - interface: up, multicast, its addresses per family;
//   - mdns: an announcement of a probe service made on the interface comes
//     back to a browser on it (multicast gets out and in);
//   - responders: the mDNS responders that answer a service type
//     enumeration there (other devices' mDNS gets through);
//   - peers: the nearnet peers of --service visible there within --timeout;
//   - for each of them (at most 8): whether it answers over TCP and over
//     QUIC (a refusal by its security still means reachable), and whether
//     the connection has datagrams;
//   - with --turn (interface "ice"): whether each STUN server answers a
//     binding (this side's mapped address) and each TURN server allocates
//     with --turn-credentials (never printed), each failure named (401:
//     wrong credentials; no answer within --timeout; connection refused;
//     TLS for turns:), and the candidates an ICE agent gathers.
//
// It exits 0 when every check passed, 1 otherwise. --json prints one
// "check" event per line.
func runDoctor(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("doctor")
	fs.summary = "Checks each interface (those of --interface, or every usable one): addresses, multicast,\n" +
		"mDNS, the nearnet peers visible, and whether each answers over TCP and QUIC. Give the\n" +
		"peers' security flags (--key-file, --trust, ...) to check their connections fully. With\n" +
		"--turn (and --turn-credentials), checks each STUN and TURN server and lists the ICE candidates."
	timeout := durationValue(3 * time.Second)
	fs.Var(&timeout, "timeout", "how long to wait for announcements and answers (`D`)")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	cfg, err := fs.config(false)
	if err != nil {
		return err
	}
	defer fs.closeTunnel() // after the node's Close, deferred later
	ifaces, ierr := doctorInterfaces(cfg.Interfaces)
	if ierr != nil && len(cfg.ICEServers) == 0 {
		return ierr
	}
	d := &doctor{out: newPrinter(e.stdout, fs.g.json), cfg: cfg, fs: fs, wait: time.Duration(timeout)}
	for _, ifi := range ifaces {
		d.checkInterface(ctx, ifi)
	}
	if len(cfg.ICEServers) > 0 {
		d.checkICE(ctx, cfg.ICEServers)
	}
	if ierr != nil {
		return ierr
	}
	if d.failed > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", d.failed, d.checks)
	}
	return nil
}

type doctor struct {
	out    *printer
	cfg    *nearnet.Config
	fs     *flagSet
	wait   time.Duration
	checks int
	failed int
}

// checkEvent is one check's result.
type checkEvent struct {
	head
	Interface string `json:"interface"`
	Check     string `json:"check"` // interface, mdns, peers, tcp, quic, datagrams; stun, turn, candidates
	Peer      string `json:"peer,omitempty"`
	Server    string `json:"server,omitempty"` // a STUN or TURN server's URL (interface "ice")
	OK        bool   `json:"ok"`
	Detail    string `json:"detail"`
	Advice    string `json:"advice,omitempty"`
}

func (c *checkEvent) text() string {
	mark := "ok  "
	if !c.OK {
		mark = "FAIL"
	}
	s := fmt.Sprintf("%s %s %s", mark, c.Interface, c.Check)
	if c.Peer != "" {
		s += " " + clean(c.Peer)
	}
	if c.Server != "" {
		s += " " + clean(c.Server)
	}
	s += ": " + c.Detail
	if c.Advice != "" {
		s += "\n     -> " + c.Advice
	}
	return s
}

func (d *doctor) report(ifi, check, peer string, ok bool, detail, advice string) {
	d.checks++
	if !ok {
		d.failed++
	} else {
		advice = ""
	}
	d.out.print("", &checkEvent{head: head{Event: "check"}, Interface: ifi, Check: check, Peer: peer, OK: ok, Detail: detail, Advice: advice})
}

// doctorInterfaces returns the named interfaces, or every one that is up,
// not loopback and has an address.
func doctorInterfaces(names []string) ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []net.Interface
	for _, ifi := range all {
		addrs, _ := ifi.Addrs()
		switch {
		case len(names) > 0 && slices.Contains(names, ifi.Name):
		case len(names) == 0 && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagLoopback == 0 && len(addrs) > 0:
		default:
			continue
		}
		out = append(out, ifi)
	}
	if len(out) == 0 {
		if len(names) > 0 {
			return nil, fmt.Errorf("doctor: no interface named %s", strings.Join(names, ", "))
		}
		return nil, errors.New("doctor: no interface is up with an address (name one with --interface, lo for loopback)")
	}
	return out, nil
}

func (d *doctor) checkInterface(ctx context.Context, ifi net.Interface) {
	var v4, v6 []string
	if addrs, err := ifi.Addrs(); err == nil {
		for _, a := range addrs {
			p, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := p.Addr()
			if ip.Is6() && ip.IsLinkLocalUnicast() {
				ip = ip.WithZone(ifi.Name)
			}
			if ip.Is4() {
				v4 = append(v4, ip.String())
			} else {
				v6 = append(v6, ip.String())
			}
		}
	}
	up, mc := ifi.Flags&net.FlagUp != 0, ifi.Flags&net.FlagMulticast != 0 || ifi.Flags&net.FlagLoopback != 0
	detail := fmt.Sprintf("up=%v multicast=%v IPv4 [%s] IPv6 [%s]", up, mc, strings.Join(v4, " "), strings.Join(v6, " "))
	ok := up && mc && len(v4)+len(v6) > 0
	d.report(ifi.Name, "interface", "", ok, detail, "bring the interface up with an address, or name another with --interface")
	if !ok {
		return
	}
	if !d.checkMDNS(ctx, ifi.Name) {
		return
	}
	d.checkResponders(ctx, ifi.Name)
	d.checkPeers(ctx, ifi.Name)
}

// checkMDNS advertises a probe service on ifi and browses for it from a
// second node: the announcement must leave and come back.
func (d *doctor) checkMDNS(ctx context.Context, ifi string) bool {
	var tag [3]byte
	rand.Read(tag[:])
	svc := "_nndr" + hex.EncodeToString(tag[:]) + "._tcp" // 10 characters: RFC 6335 allows 15
	probe := func(hidden bool) (*nearnet.Node, error) {
		return nearnet.NewNode(&nearnet.Config{Security: nearnet.SecurityNone, Service: svc, Interfaces: []string{ifi},
			Hidden: hidden, Transport: nearnet.TransportTCP, DisableDatagrams: true, DisablePathMonitor: true})
	}
	ad, err := probe(false)
	if err != nil {
		d.report(ifi, "mdns", "", false, err.Error(), "")
		return false
	}
	defer ad.Close()
	if err := ad.Listen(ctx); err != nil {
		d.report(ifi, "mdns", "", false, "cannot advertise: "+err.Error(),
			"mDNS needs UDP port 5353 and multicast on this interface")
		return false
	}
	br, err := probe(true)
	if err != nil {
		d.report(ifi, "mdns", "", false, err.Error(), "")
		return false
	}
	defer br.Close()
	bctx, cancel := context.WithTimeout(ctx, d.wait)
	defer cancel()
	seen := false
	br.Browse(bctx, func(e nearnet.BrowseEvent) {
		if e.Kind != nearnet.Lost && e.ID == ad.ID() {
			seen = true
			cancel()
		}
	})
	if !seen {
		d.report(ifi, "mdns", "", false, fmt.Sprintf("our own announcement did not come back within %v", d.wait),
			"multicast is filtered here (a firewall, or an access point that isolates clients): "+
				"peers will not be found; connect with --to host:port")
		return false
	}
	d.report(ifi, "mdns", "", true, "our own announcement came back: multicast gets out and in", "")
	return true
}

// checkResponders asks which mDNS responders on ifi answer a service type
// enumeration: whether anybody else's mDNS gets through.
func (d *doctor) checkResponders(ctx context.Context, ifi string) {
	qctx, cancel := context.WithTimeout(ctx, d.wait)
	defer cancel()
	as, err := discovery.Responders(qctx, discovery.Config{Interfaces: []string{ifi}})
	if err != nil {
		d.report(ifi, "responders", "", false, err.Error(), "")
		return
	}
	if len(as) == 0 {
		d.report(ifi, "responders", "", false, fmt.Sprintf("no mDNS responder answered within %v", d.wait),
			"if other devices are on this network (printers, phones, other peers), it drops multicast between them "+
				"(client isolation): connect with --to host:port")
		return
	}
	var who []string
	for _, a := range as {
		who = append(who, fmt.Sprintf("%s (%s)", a.Addr, strings.Join(a.Types, " ")))
	}
	d.report(ifi, "responders", "", true, fmt.Sprintf("%d answered: %s", len(as), strings.Join(who, ", ")), "")
}

// checkPeers lists the nearnet peers visible on ifi and tries each.
func (d *doctor) checkPeers(ctx context.Context, ifi string) {
	cfg := *d.cfg
	cfg.Interfaces, cfg.Hidden = []string{ifi}, true
	n, err := d.fs.newNode(&cfg)
	if err != nil {
		d.report(ifi, "peers", "", false, err.Error(), "")
		return
	}
	defer n.Close()
	bctx, cancel := context.WithTimeout(ctx, d.wait)
	defer cancel()
	var mu sync.Mutex
	peers := map[nearnet.PeerID]nearnet.Advert{}
	n.Browse(bctx, func(e nearnet.BrowseEvent) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind != nearnet.Lost && !e.ID.IsZero() {
			peers[e.ID] = e.Advert
		}
	})
	if len(peers) == 0 {
		d.report(ifi, "peers", "", false, fmt.Sprintf("no nearnet peer of %s seen within %v", cfg.Service, d.wait),
			"start one (nearnet listen) on this network with the same --service, or wait longer with --timeout")
		return
	}
	var names []string
	for _, a := range peers {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	d.report(ifi, "peers", "", true, fmt.Sprintf("%d seen: %s", len(peers), strings.Join(names, ", ")), "")
	tried := 0
	for _, name := range names {
		if tried == 8 {
			break
		}
		tried++
		for _, a := range peers {
			if a.Name == name {
				d.checkPeer(ctx, ifi, a)
			}
		}
	}
}

// checkPeer tries a over each transport it offers.
func (d *doctor) checkPeer(ctx context.Context, ifi string, a nearnet.Advert) {
	for _, tr := range []struct {
		name, token string
		t           nearnet.Transport
		port        string
	}{{"tcp", "ws", nearnet.TransportTCP, "TCP"}, {"quic", "quic", nearnet.TransportQUIC, "UDP"}} {
		if len(a.Transports) > 0 && !slices.Contains(a.Transports, tr.token) {
			continue
		}
		cfg := *d.cfg
		cfg.Interfaces, cfg.Hidden, cfg.Transport, cfg.PreferQUIC = []string{ifi}, true, tr.t, false
		n, err := d.fs.newNode(&cfg)
		if err != nil {
			d.report(ifi, tr.name, a.Name, false, err.Error(), "")
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, d.wait)
		c, err := n.ConnectAdvert(cctx, a)
		cancel()
		var rej *nearnet.RejectedError
		switch {
		case err == nil:
			d.report(ifi, tr.name, a.Name, true, "connected to "+c.Peer().Addr.String(), "")
			dg := c.MaxDatagramSize()
			d.report(ifi, "datagrams", a.Name, dg > 0, fmt.Sprintf("over %s: up to %d bytes", tr.name, dg),
				"the peer offered no datagrams, or this side has them off")
		case errors.As(err, &rej) || errors.Is(err, nearnet.ErrKeyMismatch):
			d.report(ifi, tr.name, a.Name, true, "reachable; its security refused this side: "+err.Error(), "")
		default:
			d.report(ifi, tr.name, a.Name, false, err.Error(),
				fmt.Sprintf("a firewall may drop %s port %d on the way: allow it, or try --transport %s",
					tr.port, a.Port, map[string]string{"tcp": "quic", "quic": "tcp"}[tr.name]))
		}
		n.Close()
	}
}
