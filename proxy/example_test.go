package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/nearnet/nearnet/proxy"
)

func ExampleParse() {
	d, err := proxy.Parse("socks5://alice:s3cret@127.0.0.1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d) // the password never shows
	// Output: socks5://alice:xxxxx@127.0.0.1:1080
}

func ExampleParse_badURL() {
	_, err := proxy.Parse("htp://alice:s3cret@proxy.lan:3128")
	fmt.Println(err)
	// Output: proxy: bad proxy URL "htp://alice:xxxxx@proxy.lan:3128": scheme "htp" is not supported; want http, https, socks5 or socks5h
}

func ExampleDialer_DialContext() {
	// A port of 127.0.0.1 on which nothing listens, standing in for a
	// proxy that is down.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()

	d, _ := proxy.Parse("http://alice:s3cret@" + addr)
	c, err := d.DialContext(context.Background(), "tcp", "peer.example:7000")
	var e *proxy.Error
	switch {
	case err == nil:
		c.Close()
	case errors.As(err, &e) && e.Kind == proxy.ProxyUnreachable:
		fmt.Println("the proxy is down")
	case errors.As(err, &e) && (e.Kind == proxy.AuthFailed || e.Kind == proxy.AuthRequired):
		fmt.Println("check the proxy credentials")
	default:
		fmt.Println(err)
	}
	// Output: the proxy is down
}
