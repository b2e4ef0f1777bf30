package cli

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/tunnel"
)

// The --tun flags run a command's node on a userspace TCP/IP stack behind
// a TUN device (nearnet.Config.Tunnel), so that a tunnel's configuration
// step can be exercised from a shell:
//
//	ip tuntap add dev nn0 mode tun && ip addr add 10.9.0.1/24 dev nn0 && ip link set nn0 up
//	nearnet listen --tun nn0 --tun-addr 10.9.0.2/24 --key-file psk
//	nearnet chat --to 10.9.0.2:PORT --key-file psk     # from the host's side

// tunFlags are the globals of the userspace stack.
type tunFlags struct {
	name     string
	addrs    prefixList
	withHost bool
	mcast    bool
	stack    *tunnel.Stack // opened by config, closed by closeTunnel
}

func (fs *flagSet) addTunFlags() {
	t := &fs.g.tun
	fs.StringVar(&t.name, "tun", "", "run inside the TUN device `NAME` (created if absent, set up) on a userspace TCP/IP stack: "+
		"no host socket, no discovery unless --tun-multicast (dial by address); needs --tun-addr")
	fs.Var(&t.addrs, "tun-addr", "the userspace stack's own address `ADDR/PREFIX` behind --tun (10.9.0.2/24, fd00::2/64; repeatable)")
	fs.BoolVar(&t.mcast, "tun-multicast", false, "with --tun alone: the tunnel carries multicast (a Pipe does, a TUN device reaches the host's mDNS on it): advertise and browse with mDNS inside it, never on the host's interfaces")
	fs.BoolVar(&t.withHost, "tun-with-host", false, "with --tun: keep the host's sockets and discovery too; addresses on --tun-addr's networks are dialed through the tunnel")
}

// checkTun reports a usage mistake in the --tun flags.
func (fs *flagSet) checkTun() error {
	t := &fs.g.tun
	switch {
	case t.name == "" && (len(t.addrs) > 0 || t.withHost || t.mcast):
		return fs.usageError("--tun-addr, --tun-multicast and --tun-with-host need --tun NAME")
	case t.mcast && t.withHost:
		return fs.usageError("--tun-multicast is for --tun alone: with --tun-with-host, discovery runs on the host's interfaces")
	case t.name != "" && len(t.addrs) == 0:
		return fs.usageError("--tun needs --tun-addr ADDR/PREFIX: the userspace stack's own address, e.g. 10.9.0.2/24")
	case t.name != "" && !t.withHost && (fs.g.proxy != "" || fs.g.proxyEnv):
		return fs.usageError("--proxy does not apply inside --tun (add --tun-with-host for the host's connections)")
	}
	return nil
}

// openTunnel opens the TUN device and the stack of --tun for cfg.
func (fs *flagSet) openTunnel(cfg *nearnet.Config) error {
	t := &fs.g.tun
	if t.name == "" {
		return nil
	}
	dev, mtu, err := tunnel.OpenTUN(t.name)
	if err != nil {
		return fmt.Errorf("--tun: %s", errText(err))
	}
	st, err := tunnel.New(dev, tunnel.Options{Addrs: t.addrs, MTU: max(mtu, 1280), Multicast: t.mcast})
	if err != nil {
		dev.Close()
		return fmt.Errorf("--tun-addr: %s", errText(err))
	}
	t.stack = st
	cfg.Tunnel, cfg.TunnelWithHost = st, t.withHost
	return nil
}

// closeTunnel closes the stack of --tun, after the node.
func (fs *flagSet) closeTunnel() {
	if st := fs.g.tun.stack; st != nil {
		st.Close()
	}
}

// tunReach lists where a peer reaches a node inside --tun alone: the
// stack's addresses with its port.
func (fs *flagSet) tunReach(e *readyEvent) {
	t := &fs.g.tun
	if t.stack == nil || t.withHost {
		return
	}
	e.Reach = nil
	for _, p := range t.stack.Addrs() {
		e.Reach = append(e.Reach, net.JoinHostPort(p.Addr().String(), strconv.Itoa(e.Port)))
	}
}

type prefixList []netip.Prefix

func (l *prefixList) String() string {
	var s []string
	for _, p := range *l {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("want an address with its prefix length, e.g. 10.9.0.2/24 or fd00::2/64")
	}
	*l = append(*l, p)
	return nil
}
