package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

// rawServer is the baseline: TLS 1.3 over TCP with both sides presenting a
// P-256 certificate (as nearnet does), messages framed with a 4-byte length.
type rawServer struct {
	ln        net.Listener
	clientTLS *tls.Config
}

func newRawServer() (*rawServer, error) {
	sid, err := security.NewIdentity()
	if err != nil {
		return nil, err
	}
	cid, err := security.NewIdentity()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", security.ServerConfig(sid, nil))
	if err != nil {
		return nil, err
	}
	return &rawServer{ln: ln, clientTLS: security.ClientConfig(cid, nil)}, nil
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }
func (s *rawServer) Close()       { s.ln.Close() }

// accept returns the next server-side connection, handshake done.
func (s *rawServer) accept() (*tls.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	tc := c.(*tls.Conn)
	return tc, tc.Handshake()
}

func (s *rawServer) dial(ctx context.Context) (*tls.Conn, error) {
	d := tls.Dialer{Config: s.clientTLS}
	c, err := d.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// rawPair is a connected baseline pair.
type rawPair struct {
	srv    *rawServer
	client *tls.Conn
	server *tls.Conn
}

func newRawPair(ctx context.Context) (*rawPair, error) {
	srv, err := newRawServer()
	if err != nil {
		return nil, err
	}
	type res struct {
		c   *tls.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := srv.accept()
		ch <- res{c, err}
	}()
	c, err := srv.dial(ctx)
	if err != nil {
		srv.Close()
		return nil, err
	}
	if err := c.Handshake(); err != nil {
		srv.Close()
		return nil, err
	}
	r := <-ch
	if r.err != nil {
		c.Close()
		srv.Close()
		return nil, r.err
	}
	return &rawPair{srv: srv, client: c, server: r.c}, nil
}

func (p *rawPair) Close() {
	p.client.Close()
	p.server.Close()
	p.srv.Close()
}

func writeFrame(w io.Writer, hdr []byte, m []byte) error {
	binary.BigEndian.PutUint32(hdr, uint32(len(m)))
	if _, err := w.Write(hdr[:4]); err != nil {
		return err
	}
	_, err := w.Write(m)
	return err
}

// readFrame reads one length-prefixed message into a new slice, as a
// message API must (the caller keeps it).
func readFrame(r *bufio.Reader, hdr []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, err
	}
	m := make([]byte, binary.BigEndian.Uint32(hdr))
	_, err := io.ReadFull(r, m)
	return m, err
}

// nnPair is a connected nearnet pair on loopback, pre-shared-key mode.
type nnPair struct {
	a, b   *nearnet.Node
	ca, cb *nearnet.Conn
}

func newNode(tr nearnet.Transport, extra func(*nearnet.Config)) (*nearnet.Node, error) {
	cfg := nearnet.Config{Key: benchKey, ListenAddr: "127.0.0.1:0", Hidden: true, Transport: tr}
	// NEARNET_BENCH_MEMORY_BUDGET (bytes) measures with Config.MemoryBudget
	// set: the metering's cost on the message path.
	if v, err := strconv.ParseInt(os.Getenv("NEARNET_BENCH_MEMORY_BUDGET"), 10, 64); err == nil {
		cfg.MemoryBudget = v
	}
	if extra != nil {
		extra(&cfg)
	}
	n, err := nearnet.NewNode(&cfg)
	if err != nil {
		return nil, err
	}
	return n, nil
}

var benchKey = func() *security.Key { k, _ := security.GenerateKey(); return &k }()

func newNNPair(ctx context.Context, tr nearnet.Transport) (*nnPair, error) {
	a, err := newNode(tr, nil)
	if err != nil {
		return nil, err
	}
	b, err := newNode(tr, nil)
	if err != nil {
		return nil, err
	}
	return connectPair(ctx, a, b, net.Addr.String)
}

// connectPair has b listen and a connect to it at the address target
// makes of b's listening address; on a failure it closes both.
func connectPair(ctx context.Context, a, b *nearnet.Node, target func(net.Addr) string) (*nnPair, error) {
	if err := b.Listen(ctx); err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	ca, err := a.Connect(ctx, target(b.Addr()))
	if err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	cb, err := b.Accept(ctx)
	if err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	return &nnPair{a: a, b: b, ca: ca, cb: cb}, nil
}

func (p *nnPair) Close() {
	p.a.Close()
	p.b.Close()
}
