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

// Two nodes that trust nothing yet pair by a six-digit code: one shows it,
// the other types it. Each then trusts the other's identity, here for the
// life of the node (Config.KnownPeersFile would keep it).
func ExampleNode_OfferPairing() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desk, _ := nearnet.NewNode(&nearnet.Config{Name: "desk", Security: nearnet.SecurityPinned, ListenAddr: "127.0.0.1:0", Hidden: true})
	defer desk.Close()
	if err := desk.Listen(ctx); err != nil {
		panic(err)
	}
	offer, err := desk.OfferPairing(nil)
	if err != nil {
		panic(err)
	}
	defer offer.Close()
	shown := offer.Code().Reveal() // "123-456": show it to the user, never log it

	laptop, _ := nearnet.NewNode(&nearnet.Config{Name: "laptop", Security: nearnet.SecurityPinned})
	defer laptop.Close()
	typed, _ := security.ParsePairingCode(shown) // what the user typed
	answer, _ := laptop.AnswerPairing(typed, nil)
	defer answer.Close()
	c, err := answer.Connect(ctx, desk.Addr().String())
	if err != nil {
		panic(err)
	}
	peer, _ := offer.Wait(ctx)
	fmt.Println(c.Peer().Name, c.Peer().Fingerprint == desk.Fingerprint())
	fmt.Println(peer.Name, peer.Fingerprint == laptop.Fingerprint())
	// Output:
	// desk true
	// laptop true
}
