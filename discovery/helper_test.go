package discovery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/nearnet/nearnet/pathmon"
)

// The test binary doubles as a helper process, so tests can run a
// responder or a browser in another process or network namespace:
// TestMain calls helperMain when helperEnv is set (startHelper, in
// helperproc_test.go, starts one). Settings come from
// environment variables:
//
//	NEARNET_DISCOVERY_HELPER  "respond" or "browse"
//	NN_IFACES                 comma-separated interface names (empty: default selection)
//	NN_TYPE, NN_INSTANCE, NN_PORT, NN_TXT ("k=v;k=v")
//	NN_MONITOR                non-empty: follow the network with a pathmon.Monitor (Config.Monitor)
//
// A responder prints "REGISTERED <instance>" once registered, then obeys
// stdin lines "reannounce" and "settxt k=v;k=v" (answering "OK"); a browser
// prints one JSON Event per line; both run until stdin is closed. Role
// "qu" sends one QU query for NN_TYPE's PTR from port 5353 and prints
// "UNICAST" or "MULTICAST" for the first answer, or "NONE".
const helperEnv = "NEARNET_DISCOVERY_HELPER"

func helperMain() int {
	var ifaces []string
	if s := os.Getenv("NN_IFACES"); s != "" {
		ifaces = strings.Split(s, ",")
	}
	cfg := Config{Interfaces: ifaces}
	if os.Getenv("NN_MONITOR") != "" {
		m, err := pathmon.New(pathmon.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer m.Close() // after the responder or browser, deferred later
		cfg.Monitor = m
	}
	typ := os.Getenv("NN_TYPE")
	stdinClosed := make(chan struct{})
	commands := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			commands <- sc.Text()
		}
		close(stdinClosed)
	}()
	var out sync.Mutex
	println := func(s string) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintln(os.Stdout, s)
	}
	switch os.Getenv(helperEnv) {
	case "respond":
		r, err := NewResponder(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer r.Close()
		port, _ := strconv.Atoi(os.Getenv("NN_PORT"))
		txt := parseTXTArg(os.Getenv("NN_TXT"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		reg, err := r.Register(ctx, Service{Instance: os.Getenv("NN_INSTANCE"), Type: typ, Port: port, TXT: txt})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		println("REGISTERED " + reg.Service().Instance)
		for {
			select {
			case <-stdinClosed:
				return 0
			case c := <-commands:
				var err error
				switch {
				case c == "reannounce":
					err = r.Reannounce()
				case strings.HasPrefix(c, "settxt "):
					err = reg.SetTXT(parseTXTArg(strings.TrimPrefix(c, "settxt ")))
				}
				if err != nil {
					println("ERROR " + err.Error())
				} else {
					println("OK")
				}
			case <-time.After(2 * time.Minute):
				return 0
			}
		}
	case "qu":
		println(quQuery(cfg, typ))
		return 0
	case "browse":
		b, err := NewBrowser(cfg, typ, func(ev Event) {
			j, _ := json.Marshal(ev)
			println(string(j))
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer b.Close()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper role")
		return 2
	}
	select {
	case <-stdinClosed:
	case <-time.After(2 * time.Minute): // never outlive a stuck test
	}
	return 0
}

func parseTXTArg(s string) map[string]string {
	txt := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			txt[k] = v
		}
	}
	return txt
}

// quQuery asks for typ's PTR with the unicast-response bit from port 5353
// and reports how the first answer arrived.
func quQuery(cfg Config, typ string) string {
	links, err := resolveLinks(cfg.netOf(), cfg.Interfaces)
	if err != nil {
		return "ERROR " + err.Error()
	}
	c, err := openConn(cfg.netOf(), links, mdnsPort, cfg.logger(), &counters{})
	if err != nil {
		return "ERROR " + err.Error()
	}
	defer c.close()
	m := new(dns.Msg)
	m.Question = []dns.Question{{Name: typ + ".local.", Qtype: dns.TypePTR, Qclass: dns.ClassINET | classUnicast}}
	b, _ := m.Pack()
	if err := c.sendMulticast(links[0], b); err != nil {
		return "ERROR " + err.Error()
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(3 * time.Second)
	_ = c.pc.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		n, cm, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			break
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) != nil || !r.Response || len(r.Answer) == 0 {
			continue
		}
		if cm != nil && cm.Dst != nil && !cm.Dst.IsMulticast() {
			return "UNICAST"
		}
		return "MULTICAST"
	}
	return "NONE"
}
