package quict_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nearnet/nearnet/internal/quict"
	"github.com/nearnet/nearnet/security"
)

// A listener and a dialer on loopback: the dialer speaks first on the
// control stream, the listener answers by closing with a nearnet close
// code, and the dialer sees that code and reason.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lid, _ := security.NewIdentity()
	did, _ := security.NewIdentity()

	ln, err := quict.Listen("127.0.0.1:0", security.ServerConfig(lid, nil), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()

	d, err := quict.Dial(ctx, ln.Addr().String(), security.ClientConfig(did, nil), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	d.Control().Write([]byte("hello"))

	l, err := ln.Accept(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 5)
	io.ReadFull(l.Control(), buf)
	fmt.Printf("listener got %q over ALPN %s\n", buf, l.ConnectionState().NegotiatedProtocol)
	l.CloseWithError(4004, "duplicate connection")

	_, err = d.Control().Read(buf)
	var ce *quict.CloseError
	if errors.As(err, &ce) {
		fmt.Println("dialer:", ce.Code, ce.Reason, ce.Remote)
	}
	// Output:
	// listener got "hello" over ALPN nearnet/1
	// dialer: 4004 duplicate connection true
}
