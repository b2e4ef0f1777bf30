package resource_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/nearnet/nearnet/internal/resource"
)

// A sender offers a file on a stream of its own; the receiver looks at the
// offer and accepts it into a directory.
func Example() {
	dir, err := os.MkdirTemp("", "inbox")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	sender, receiver := net.Pipe() // one stream per transfer
	ctx := context.Background()
	content := "hello, nearby peer\n"

	sent := make(chan error, 1)
	go func() {
		defer sender.Close()
		offer := resource.Offer{Name: "notes/hello.txt", Size: int64(len(content)), Meta: map[string]string{"type": "text/plain"}}
		_, err := resource.Send(ctx, sender, offer, strings.NewReader(content), nil)
		sent <- err
	}()

	in, err := resource.ReadOffer(ctx, receiver)
	if err != nil {
		panic(err)
	}
	fmt.Printf("offered %s (%d bytes, %s)\n", in.Offer.Name, in.Offer.Size, in.Offer.Meta["type"])
	got, err := in.Accept(ctx, dir, &resource.AcceptOptions{PartialKey: "peer-1"}, func(done, total int64) {
		fmt.Printf("progress %d/%d\n", done, total)
	})
	receiver.Close()
	if err != nil {
		panic(err)
	}
	fmt.Printf("received %s, sha256 %x...\n", got.Name, got.SHA256[:4])
	fmt.Println("sender:", <-sent)
	// Output:
	// offered notes/hello.txt (19 bytes, text/plain)
	// progress 0/19
	// progress 19/19
	// received notes/hello.txt, sha256 ced800f7...
	// sender: <nil>
}

func ExampleSafeName() {
	for _, name := range []string{"album/a.jpg", "../etc/passwd", "con.txt", "a\x00b"} {
		_, err := resource.SafeName(name)
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// nearnet: unsafe resource name "../etc/passwd": component ".." leaves the directory
	// nearnet: unsafe resource name "con.txt": component "con.txt" is a Windows device name
	// nearnet: unsafe resource name "a\x00b": component "a\x00b" holds control character U+0000
}
