package nearnet_test

import (
	"bytes"
	"context"
	"log"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

// readmeExample is the library example of README.md, from NewNode on,
// exactly as it stands there (TestREADMEExample checks that it does).
func readmeExample(ctx context.Context, cfg *nearnet.Config) error {
	// README begin
	node, err := nearnet.NewNode(cfg)
	if err != nil {
		return err // a *nearnet.ConfigError names the field
	}
	defer node.Close()
	if err := node.Listen(ctx); err != nil { // accept and advertise
		return err
	}
	// Two peers that find each other both dial, and the library keeps one
	// connection: a side may get it from ConnectAdvert only, or from Accept
	// too. So read every Conn, whichever call returned it, once.
	var mu sync.Mutex
	reading := map[*nearnet.Conn]bool{}
	read := func(c *nearnet.Conn) {
		mu.Lock()
		seen := reading[c]
		reading[c] = true
		mu.Unlock()
		if seen {
			return
		}
		for {
			m, err := c.ReceiveMessage(ctx)
			if err != nil {
				return // io.EOF after the peer's graceful Close
			}
			log.Printf("%s: %s", c.Peer().Name, m)
		}
	}
	go node.Browse(ctx, func(e nearnet.BrowseEvent) { // star: connect to every peer found
		if e.Kind == nearnet.Found && !e.ID.IsZero() {
			go func() {
				if c, err := node.ConnectAdvert(ctx, e.Advert); err == nil {
					c.SendMessage(ctx, []byte("hello"))
					read(c)
				}
			}()
		}
	})
	for {
		c, err := node.Accept(ctx)
		if err != nil {
			return err
		}
		go read(c)
	}
	// README end
}

// TestREADMEExample runs README.md's library example as two nodes on
// loopback that find each other by mDNS and connect as a star: each must
// print the other's hello, whichever side's connection survives the
// duplicate resolution.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	region := string(src)
	region = region[strings.Index(region, "// README begin\n")+len("// README begin\n") : strings.Index(region, "\t// README end")]
	region = strings.ReplaceAll("\n"+region, "\n\t", "\n")[1:]
	if !strings.Contains(string(readme), "```go\n") || !strings.Contains(string(readme), region) {
		t.Fatalf("README.md's library example differs from readmeExample; make them the same:\n%s", region)
	}

	var out syncBuffer
	log.SetOutput(&out)
	log.SetFlags(0)
	defer func() { log.SetOutput(os.Stderr); log.SetFlags(log.LstdFlags) }()
	key, err := security.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, name := range []string{"kitchen", "hall"} {
		cfg := &nearnet.Config{Name: name, Key: &key, Service: "_readme._tcp", Interfaces: []string{"lo"}, ListenAddr: "127.0.0.1:0"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readmeExample(ctx, cfg); err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second) // a hang, not a measurement
	for !(strings.Contains(out.String(), "kitchen: hello") && strings.Contains(out.String(), "hall: hello")) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the two nodes printed %q; want each to print the other's hello", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
}

// syncBuffer is a bytes.Buffer for several goroutines.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
