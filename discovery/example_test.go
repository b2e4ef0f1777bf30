package discovery_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nearnet/nearnet/discovery"
)

// Advertise a service on loopback and find it again.
func Example() {
	cfg := discovery.Config{Interfaces: []string{"lo"}}
	r, err := discovery.NewResponder(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = r.Register(ctx, discovery.Service{
		Instance: "Discovery Example",
		Type:     "_nnexample._tcp",
		Port:     4242,
		TXT:      map[string]string{"id": "42"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	found := make(chan discovery.Service, 1)
	b, err := discovery.NewBrowser(cfg, "_nnexample._tcp", func(ev discovery.Event) {
		if ev.Kind == discovery.Found {
			select {
			case found <- ev.Service:
			default:
			}
		}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	select {
	case s := <-found:
		// Addrs holds lo's addresses, IPv4 first: 127.0.0.1, then ::1
		// where IPv6 is on.
		fmt.Println(s.Instance, s.Port, s.Addrs[0], s.TXT["id"], s.Interface)
	case <-ctx.Done():
		fmt.Println("not found")
	}
	// Output: Discovery Example 4242 127.0.0.1 42 lo
}

func ExampleEncodeTXT() {
	txt, err := discovery.EncodeTXT(map[string]string{"v": "1", "id": "f00d"})
	fmt.Println(txt, err)
	_, err = discovery.EncodeTXT(map[string]string{"a=b": "x"})
	fmt.Println(err)
	// Output:
	// [id=f00d v=1] <nil>
	// discovery: invalid TXT key "a=b": key must not contain '='
}

func ExampleDecodeTXT() {
	m := discovery.DecodeTXT([]string{"ID=f00d", "id=ignored", "flag"})
	fmt.Printf("%q %q\n", m["id"], m["flag"])
	// Output: "f00d" ""
}

func ExampleValidateServiceType() {
	fmt.Println(discovery.ValidateServiceType("_nearnet._tcp"))
	fmt.Println(discovery.ValidateServiceType("_near--net._tcp"))
	// Output:
	// <nil>
	// discovery: invalid Service.Type "_near--net._tcp": service name must not contain two hyphens in a row (RFC 6335)
}
