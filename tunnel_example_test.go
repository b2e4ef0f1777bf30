package nearnet_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
	"github.com/nearnet/nearnet/tunnel"
)

// Two nodes, each on a userspace TCP/IP stack of its own, joined by an
// in-memory packet pipe: no host socket is opened. An application's own
// packet device (a TUN file descriptor, a VPN's packet flow) takes the
// pipe's place.
func ExampleConfig_tunnel() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, _ := security.GenerateKey()

	devA, devB := tunnel.Pipe()
	stackA, _ := tunnel.New(devA, tunnel.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}})
	defer stackA.Close()
	stackB, _ := tunnel.New(devB, tunnel.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24")}})
	defer stackB.Close()

	listener, _ := nearnet.NewNode(&nearnet.Config{Name: "inside", Key: &key, Tunnel: stackB, ListenAddr: ":7000"})
	defer listener.Close()
	if err := listener.Listen(ctx); err != nil {
		panic(err)
	}
	dialer, _ := nearnet.NewNode(&nearnet.Config{Name: "also-inside", Key: &key, Tunnel: stackA})
	defer dialer.Close()

	c, err := dialer.Connect(ctx, "10.9.0.2:7000")
	if err != nil {
		panic(err)
	}
	c.SendMessage(ctx, []byte("hello through the tunnel"))
	in, _ := listener.Accept(ctx)
	m, _ := in.ReceiveMessage(ctx)
	host, _, _ := net.SplitHostPort(in.Peer().Addr.String())
	fmt.Printf("%s got %q from %s at %s\n", c.Peer().Name, m, in.Peer().Name, host)
	// Output: inside got "hello through the tunnel" from also-inside at 10.9.0.1
}
