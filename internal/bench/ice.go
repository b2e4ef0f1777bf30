package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nearnet/nearnet/internal/transport"
	"github.com/nearnet/nearnet/internal/transport/ice"
	"github.com/nearnet/nearnet/internal/transport/quic"
	"github.com/nearnet/nearnet/security"
)

// The ICE rows measure a path beyond the LAN as a session uses it (QUIC
// over an ICE path, internal/icepath): from creating the two agents to
// the first 64-byte message read on a QUIC stream over the path they
// found (gathering, the exchange, the checks, QUIC's handshake), and one
// stream's throughput, over a path relayed through coturn next to a
// direct one, in the same run. Everything is on loopback: the direct
// path joins two agents' host candidates on 127.0.0.1; on the relayed one
// the dialing side has only a relayed candidate, an allocation on a
// coturn the bench starts on 127.0.0.1 (with loopback peers allowed), as
// when one side's NAT randomises ports. Without turnserver (coturn) the
// rows are left out with a note.

// errNoTurnserver is a run without coturn installed.
var errNoTurnserver = errors.New("turnserver (coturn) is not installed: apt-get install coturn")

// benchTURN is a coturn on loopback.
type benchTURN struct {
	cmd    *exec.Cmd
	dir    string
	server ice.Server
}

func startTURN(ctx context.Context) (*benchTURN, error) {
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		return nil, errNoTurnserver
	}
	ln, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "nearnet-bench-turn-")
	if err != nil {
		return nil, err
	}
	var pw [12]byte
	rand.Read(pw[:])
	pass := hex.EncodeToString(pw[:])
	conf := fmt.Sprintf(`listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=%d
min-port=40000
max-port=49999
realm=nearnet.bench
lt-cred-mech
user=bench:%s
no-tls
no-dtls
no-cli
no-multicast-peers
allow-loopback-peers
pidfile=%[3]s/turnserver.pid
userdb=%[3]s/turndb
log-file=stdout
simple-log
`, port, pass, dir)
	f := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "-c", f)
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t := &benchTURN{cmd: cmd, dir: dir, server: ice.Server{URL: fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port), Username: "bench", Password: pass}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "Total General servers") {
				once = true
				close(ready)
			}
		}
		if !once {
			close(ready)
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	select {
	case <-ready:
	case <-sctx.Done():
	}
	// Listening is announced before the relay threads run: wait until it
	// answers a binding.
	for sctx.Err() == nil {
		rs, err := ice.Probe(sctx, ice.Config{Servers: []ice.Server{t.server}}, 500*time.Millisecond)
		if err == nil && rs[0].Err == nil {
			return t, nil
		}
	}
	t.Close()
	return nil, errors.New("bench: coturn did not start")
}

func (t *benchTURN) Close() {
	t.cmd.Process.Kill()
	t.cmd.Wait()
	os.RemoveAll(t.dir)
}

// icePair is a QUIC connection over an ICE path between two agents.
type icePair struct {
	quicTime       time.Duration // from QUIC's dial over the ready path to the first message read
	paths          [2]*ice.Path
	qts            [2]*quic.Transport
	ln             transport.Listener
	client, server transport.Conn
}

func (p *icePair) Close() {
	if p.client != nil {
		p.client.End(1000, "")
	}
	if p.server != nil {
		p.server.End(1000, "")
	}
	if p.ln != nil {
		p.ln.Close()
	}
	for _, q := range p.qts {
		if q != nil {
			q.Close()
		}
	}
	for _, x := range p.paths {
		if x != nil {
			x.Close()
		}
	}
}

type chanAcceptor chan transport.Conn

func (a chanAcceptor) HandleConn(c transport.Conn, _ time.Time) {
	select {
	case a <- c:
	default:
		c.End(1000, "")
	}
}
func (a chanAcceptor) HandleFailure(net.Addr, error) {}

// connectICE makes two agents (dialing, answering), runs ICE between
// them and a QUIC connection over the path, and sends one 64-byte message
// on its control stream, read by the other side.
func connectICE(ctx context.Context, dial, answer ice.Config) (*icePair, error) {
	p := &icePair{}
	var agents [2]*ice.Agent
	for i, cfg := range []ice.Config{dial, answer} {
		a, err := ice.NewAgent(cfg)
		if err != nil {
			for _, x := range agents {
				if x != nil {
					x.Close()
				}
			}
			return nil, err
		}
		agents[i] = a
	}
	var descs [2]ice.Description
	for i, a := range agents {
		d, err := a.Gather(ctx)
		if err != nil || len(d.Candidates) == 0 {
			agents[0].Close()
			agents[1].Close()
			return nil, fmt.Errorf("bench: ICE gathering: %v (%d candidates)", err, len(d.Candidates))
		}
		descs[i] = d
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		p.paths[1], err = agents[1].Connect(ctx, false, descs[0])
		errc <- err
	}()
	var err error
	p.paths[0], err = agents[0].Connect(ctx, true, descs[1])
	if err2 := <-errc; err == nil {
		err = err2
	}
	if err != nil {
		for i, x := range p.paths {
			if x == nil {
				agents[i].Close()
			}
		}
		p.Close()
		return nil, fmt.Errorf("bench: ICE checks: %w", err)
	}
	for i := range p.qts {
		id, err := security.NewIdentity()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.qts[i] = quic.New(quic.Options{Server: security.ServerConfig(id, nil), Client: security.ClientConfig(id, nil),
			HandshakeTimeout: 10 * time.Second, DropTime: 10 * time.Second, KeepAliveIdle: time.Second})
	}
	acc := make(chanAcceptor, 1)
	t0 := time.Now()
	if p.ln, err = p.qts[1].ListenOver(p.paths[1].Lease(), acc); err != nil {
		p.Close()
		return nil, err
	}
	if p.client, err = p.qts[0].DialOver(ctx, p.paths[0].Lease(), ice.PeerAddr); err != nil {
		p.Close()
		return nil, err
	}
	msg := make([]byte, 64)
	if _, err := p.client.Control().Write(msg); err != nil {
		p.Close()
		return nil, err
	}
	select {
	case p.server = <-acc:
	case <-ctx.Done():
		p.Close()
		return nil, ctx.Err()
	}
	if _, err := io.ReadFull(p.server.Control(), msg); err != nil {
		p.Close()
		return nil, err
	}
	p.quicTime = time.Since(t0)
	return p, nil
}

// iceRows measures the direct and the relayed ICE path.
func iceRows(ctx context.Context, o Options) ([]Result, error) {
	ctx, cancel := deadline(ctx, 2*time.Minute)
	defer cancel()
	tu, err := startTURN(ctx)
	if errors.Is(err, errNoTurnserver) {
		return []Result{{Key: "ice_relayed", Title: "relayed ICE path", Note: "left out: " + err.Error()}}, nil
	}
	if err != nil {
		return nil, err
	}
	defer tu.Close()
	direct := [2]ice.Config{{Loopback: true, CheckTimeout: 5 * time.Second}, {Loopback: true, CheckTimeout: 5 * time.Second}}
	relayed := [2]ice.Config{{Servers: []ice.Server{tu.server}, RelayOnly: true, CheckTimeout: 5 * time.Second}, direct[1]}
	n := o.scale(20, 5)
	// Throughput: rounds alternate between the two paths, each carrying
	// count writes of size bytes, and each path's median round counts, so
	// that a moment of load on the machine does not decide the ratio.
	size, count, rounds := 64<<10, o.scale(512, 128), o.scale(5, 3) // 32 MiB, 8 MiB with Quick
	if o.tiny {
		n, rounds = 1, 1 // a relayed connect costs ICE's 2 s wait
	}
	var conn, quicConn [2][]time.Duration
	var bulk [2][]time.Duration
	var pairs [2]*icePair
	defer func() {
		for _, p := range pairs {
			if p != nil {
				p.Close()
			}
		}
	}()
	for i, cfgs := range [][2]ice.Config{direct, relayed} {
		for range n {
			t0 := time.Now()
			p, err := connectICE(ctx, cfgs[0], cfgs[1])
			if err != nil {
				return nil, err
			}
			conn[i] = append(conn[i], time.Since(t0))
			quicConn[i] = append(quicConn[i], p.quicTime)
			p.Close()
		}
		p, err := connectICE(ctx, cfgs[0], cfgs[1])
		if err != nil {
			return nil, err
		}
		pairs[i] = p
		if inf := p.paths[0].Info(); (inf.Kind == ice.Relayed) != (i == 1) {
			return nil, fmt.Errorf("bench: ICE found a %v path, want the other", inf.Kind)
		}
	}
	for range rounds {
		for i, p := range pairs {
			d, err := bulkCopy(p.client.Control(), p.server.Control(), size, count)
			if err != nil {
				return nil, err
			}
			bulk[i] = append(bulk[i], d)
		}
	}
	mbit := func(ds []time.Duration) float64 {
		return float64(size*count) * 8 / percentile(ds, 0.5).Seconds() / 1e6
	}
	const base = "direct ICE path"
	return []Result{
		// ICE settles on a relayed pair only after 2 s without a better
		// one (PROTOCOL.md section 18): a session prepares its path
		// while on the LAN, so a move pays the next row only.
		finish(Result{Key: "ice_relayed_connect_p50", Title: "relayed ICE: agents to 1st message p50", Unit: "ms",
			Nearnet: ms(percentile(conn[1], 0.5)), Baseline: ms(percentile(conn[0], 0.5)), BaselineName: base}, "", nil),
		finish(Result{Key: "ice_relayed_quic_connect_p50", Title: "relayed ICE: ready path to 1st msg p50", Unit: "ms",
			Nearnet: ms(percentile(quicConn[1], 0.5)), Baseline: ms(percentile(quicConn[0], 0.5)), BaselineName: base}, "", nil),
		finish(Result{Key: "ice_relayed_stream", Title: "relayed ICE: QUIC stream throughput", Unit: "Mbit/s",
			Nearnet: mbit(bulk[1]), Baseline: mbit(bulk[0]), BaselineName: base, HigherIsBetter: true},
			">= 0.5x the direct path", func(r Result) bool { return r.Ratio >= 0.5 }),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
