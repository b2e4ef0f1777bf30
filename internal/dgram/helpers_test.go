package dgram

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"
)

// testKeys returns the two sides' keys of one flow, from random exporter
// material.
func testKeys(t testing.TB) (dialer, listener *Keys) {
	t.Helper()
	return testKeysNoT()
}

func testKeysNoT() (dialer, listener *Keys) {
	material := make([]byte, ExporterLength)
	rand.Read(material)
	d, err := KeysFromExporter(material, true)
	if err != nil {
		panic(err)
	}
	l, err := KeysFromExporter(material, false)
	if err != nil {
		panic(err)
	}
	return d, l
}

// listenLoopback opens a Mux on 127.0.0.1, closed when the test ends.
func listenLoopback(t testing.TB, cfg *Config) *Mux {
	t.Helper()
	m, err := Listen("udp4", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// pair is a flow between two Muxes: a is the dialer's side, which knows
// b's address; b is the listener's, which learns a's from its datagrams.
type pair struct {
	ma, mb *Mux
	a, b   *Flow
}

func newPair(t testing.TB, secure bool, cfg *Config) pair {
	t.Helper()
	ma, mb := listenLoopback(t, cfg), listenLoopback(t, cfg)
	return flowsOn(t, ma, mb, secure)
}

// flowsOn opens a flow between ma (dialer side) and mb (listener side).
func flowsOn(t testing.TB, ma, mb *Mux, secure bool) pair {
	t.Helper()
	sa, sb := NewSessionID(), NewSessionID()
	var ka, kb *Keys
	if secure {
		ka, kb = testKeys(t)
	}
	a, err := ma.NewFlow(FlowConfig{LocalSession: sa, RemoteSession: sb, RemoteAddr: mb.LocalAddr(), Keys: ka})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mb.NewFlow(FlowConfig{LocalSession: sb, RemoteSession: sa, Keys: kb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return pair{ma, mb, a, b}
}

// recv receives one datagram on f or fails the test after 5 seconds.
func recv(t testing.TB, f *Flow) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := f.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return p
}

// sniffer is a plain UDP socket that stands in for a peer's Mux: flows
// send to it, and the test reads and replays, alters or forges datagrams
// from it.
type sniffer struct {
	t testing.TB
	c *net.UDPConn
}

func newSniffer(t testing.TB) *sniffer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sniffer{t, c}
}

func (s *sniffer) addr() netip.AddrPort { return s.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// next reads the next datagram sent to the sniffer.
func (s *sniffer) next() []byte {
	s.t.Helper()
	s.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, slotSize)
	n, _, err := s.c.ReadFromUDPAddrPort(b)
	if err != nil {
		s.t.Fatalf("sniffer: %v", err)
	}
	return b[:n]
}

func (s *sniffer) send(b []byte, to netip.AddrPort) {
	s.t.Helper()
	if _, err := s.c.WriteToUDPAddrPort(b, to); err != nil {
		s.t.Fatalf("sniffer: %v", err)
	}
}
