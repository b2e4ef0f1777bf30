package nearnet_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

func ExampleParsePeerID() {
	id, err := nearnet.ParsePeerID("0123456789ABCDEF0123456789abcdef")
	if err != nil {
		panic(err)
	}
	fmt.Println(id, id.Short())
	// Output: 0123456789abcdef0123456789abcdef 01234567
}

func ExampleNewNode_invalidConfig() {
	_, err := nearnet.NewNode(&nearnet.Config{Security: nearnet.SecurityNone, MaxMessageSize: -1})
	var ce *nearnet.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field)
	}
	_, err = nearnet.NewNode(&nearnet.Config{})
	fmt.Println(err)
	// Output:
	// Config.MaxMessageSize
	// nearnet: invalid Config.Security (auto): no security configured: set Key, Trust, KnownPeersFile or Roots, or set Security to SecurityNone to run without it
}

// Two nodes on loopback with a pre-shared key: one listens, the other
// connects by address and sends a message.
func ExampleConn_SendMessage() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, _ := security.GenerateKey()
	listener, _ := nearnet.NewNode(&nearnet.Config{Name: "kitchen", Key: &key, ListenAddr: "127.0.0.1:0", Hidden: true})
	defer listener.Close()
	if err := listener.Listen(ctx); err != nil {
		panic(err)
	}
	dialer, _ := nearnet.NewNode(&nearnet.Config{Name: "phone", Key: &key})
	defer dialer.Close()

	c, err := dialer.Connect(ctx, listener.Addr().String())
	if err != nil {
		panic(err)
	}
	c.SendMessage(ctx, []byte("lights on"))
	c.Close() // returns once the listener has everything

	in, _ := listener.Accept(ctx)
	m, _ := in.ReceiveMessage(ctx)
	fmt.Printf("%s says %q (connected to %s)\n", in.Peer().Name, m, c.Peer().Name)
	_, err = in.ReceiveMessage(ctx)
	fmt.Println(err)
	// Output:
	// phone says "lights on" (connected to kitchen)
	// EOF
}
