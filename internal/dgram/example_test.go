package dgram_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/nearnet/nearnet/internal/dgram"
)

// Example sets up one flow the way two nodes do, both in this process: each
// has a Mux; the reliable connection carries each side's port and session
// ID; both derive keys from the TLS exporter.
func Example() {
	dialerMux, err := dgram.Listen("udp4", "127.0.0.1:0", nil)
	if err != nil {
		panic(err)
	}
	defer dialerMux.Close()
	listenerMux, err := dgram.Listen("udp4", "127.0.0.1:0", nil)
	if err != nil {
		panic(err)
	}
	defer listenerMux.Close()

	// Negotiated on the reliable connection.
	ds, ls := dgram.NewSessionID(), dgram.NewSessionID()
	// Both sides compute the same material:
	//   tlsConn.ConnectionState().ExportKeyingMaterial(dgram.ExporterLabel,
	//       dgram.ExporterContext(ds, ls), dgram.ExporterLength)
	material := make([]byte, dgram.ExporterLength)
	rand.Read(material)
	dk, _ := dgram.KeysFromExporter(material, true)
	lk, _ := dgram.KeysFromExporter(material, false)

	// The dialer sends to the listener's IP (from the reliable connection)
	// and announced port; the listener learns the dialer's address.
	d, err := dialerMux.NewFlow(dgram.FlowConfig{LocalSession: ds, RemoteSession: ls, RemoteAddr: listenerMux.LocalAddr(), Keys: dk})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	l, err := listenerMux.NewFlow(dgram.FlowConfig{LocalSession: ls, RemoteSession: ds, Keys: lk})
	if err != nil {
		panic(err)
	}
	defer l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Send([]byte("hello")); err != nil {
		panic(err)
	}
	p, err := l.Receive(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (listener now sends to the dialer: %v)\n", p, l.RemoteAddr() == dialerMux.LocalAddr())
	fmt.Printf("sent %d, received %d\n", d.Stats().Sent, l.Stats().Received)
	// Output:
	// hello (listener now sends to the dialer: true)
	// sent 1, received 1
}
