package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

// The file measurement sends a file from disk with Conn.SendResource to a
// peer that takes it with IncomingResource.Accept into a directory: both
// SHA-256s, the disk writes and the receiver's fsync before the rename are
// included. Each side is a process of its own, so that each one's peak
// RSS is its own: the parent starts this binary twice more (see
// childEnv), a receiver and a sender, and they report back on stdout.

// childEnv, set in a process's environment, makes it a bench child:
// package initialisation runs the child's part and exits, so any binary
// that links this package (the nearnet CLI, a test binary) can be one.
const childEnv = "NEARNET_BENCH_CHILD"

func init() {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
}

// FileRun is what one file measurement saw.
type FileRun struct {
	Size int64
	// Elapsed is the sender's SendResource call, from the offer to the
	// receiver's "verified and in place" (connection setup excluded).
	Elapsed time.Duration
	// SenderRSS and ReceiverRSS are each process's peak resident set in
	// bytes (VmHWM, the kernel's high-water mark over the process's life:
	// setup included); IdleRSS is that of a child of the same binary that does
	// nothing, for scale. All 0 when RSSKnown is false (not Linux).
	SenderRSS, ReceiverRSS, IdleRSS int64
	RSSKnown                        bool
}

// childArgs is what the parent writes to a child's stdin.
type childArgs struct {
	Role string `json:"role"` // "receive", "send" or "idle"
	Key  string `json:"key,omitempty"`
	Addr string `json:"addr,omitempty"` // send: the receiver's
	File string `json:"file,omitempty"` // send: the source
	Dir  string `json:"dir,omitempty"`  // receive: the target directory
	// Transport is nearnet.Transport's String ("tcp", "quic").
	Transport string `json:"transport,omitempty"`
	Count     int    `json:"count,omitempty"` // browse-veth: samples per family
}

// childReport is a line a child writes to stdout.
type childReport struct {
	Addr      string `json:"addr,omitempty"` // the receiver, once listening
	ElapsedNS int64  `json:"elapsed_ns,omitempty"`
	Size      int64  `json:"size,omitempty"`
	MaxRSS    int64  `json:"maxrss,omitempty"` // bytes
	Error     string `json:"error,omitempty"`
	// browse-veth: browse-to-ready samples (ns) over IPv4 and IPv6.
	Samples4 []int64 `json:"samples4,omitempty"`
	Samples6 []int64 `json:"samples6,omitempty"`
}

// NearnetFile writes a size-byte file into a new directory under the
// default temporary directory, sends it between two child processes over
// loopback on transport tr and removes everything again.
func NearnetFile(ctx context.Context, tr nearnet.Transport, size int64) (FileRun, error) {
	run := FileRun{Size: size}
	dir, err := os.MkdirTemp("", "nearnet-bench-*")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "source.bin")
	if err := writeSource(src, size); err != nil {
		return run, err
	}
	recvDir := filepath.Join(dir, "received")
	if err := os.Mkdir(recvDir, 0o700); err != nil {
		return run, err
	}
	key, err := security.GenerateKey()
	if err != nil {
		return run, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // kills children still running after a failure

	idle, err := startChild(ctx, childArgs{Role: "idle"})
	if err != nil {
		return run, err
	}
	ir, err := idle.result()
	if err != nil {
		return run, err
	}

	recv, err := startChild(ctx, childArgs{Role: "receive", Key: key.String(), Dir: recvDir, Transport: tr.String()})
	if err != nil {
		return run, err
	}
	defer recv.kill()
	var hello childReport
	if err := recv.next(&hello); err != nil {
		return run, err
	}
	send, err := startChild(ctx, childArgs{Role: "send", Key: key.String(), Addr: hello.Addr, File: src, Transport: tr.String()})
	if err != nil {
		return run, err
	}
	defer send.kill()
	sr, err := send.result()
	if err != nil {
		return run, err
	}
	rr, err := recv.result()
	if err != nil {
		return run, err
	}
	if rr.Size != size {
		return run, fmt.Errorf("bench: the receiver got %d bytes, want %d", rr.Size, size)
	}
	run.Elapsed = time.Duration(sr.ElapsedNS)
	_, run.RSSKnown = peakRSS()
	if run.RSSKnown {
		run.SenderRSS, run.ReceiverRSS, run.IdleRSS = sr.MaxRSS, rr.MaxRSS, ir.MaxRSS
	}
	return run, nil
}

// writeSource writes size bytes of incompressible content to path and
// syncs it, so that its writeback does not compete with the transfer.
func writeSource(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	r := rand.New(rand.NewChaCha8([32]byte{}))
	for i := 0; i+8 <= len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], r.Uint64())
	}
	for done := int64(0); done < size && err == nil; {
		binary.LittleEndian.PutUint64(block, uint64(done)) // no two blocks alike
		var n int
		n, err = f.Write(block[:min(int64(len(block)), size-done)])
		done += int64(n)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// child is a running bench child.
type child struct {
	cmd    *exec.Cmd
	out    *json.Decoder
	stderr bytes.Buffer
	role   string
}

func startChild(ctx context.Context, a childArgs) (*child, error) {
	return startChildVia(ctx, nil, a)
}

// startChildVia starts a child through a wrapper command (unshare, say):
// wrapper is the command line that runs it, the executable appended.
func startChildVia(ctx context.Context, wrapper []string, a childArgs) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	in, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	c := &child{role: a.Role}
	if len(wrapper) > 0 {
		c.cmd = exec.CommandContext(ctx, wrapper[0], append(wrapper[1:], exe)...)
	} else {
		c.cmd = exec.CommandContext(ctx, exe)
	}
	c.cmd.Env = append(os.Environ(), childEnv+"=1")
	c.cmd.Stdin = bytes.NewReader(in)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = json.NewDecoder(bufio.NewReader(out))
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// next reads the child's next report.
func (c *child) next(r *childReport) error {
	*r = childReport{}
	if err := c.out.Decode(r); err != nil {
		werr := c.cmd.Wait()
		return fmt.Errorf("bench: %s child: %v (exit: %v) %s", c.role, err, werr, strings.TrimSpace(c.stderr.String()))
	}
	if r.Error != "" {
		return fmt.Errorf("bench: %s child: %s", c.role, r.Error)
	}
	return nil
}

// result reads the child's last report and waits for it to exit.
func (c *child) result() (childReport, error) {
	var r childReport
	if err := c.next(&r); err != nil {
		return r, err
	}
	if err := c.cmd.Wait(); err != nil {
		return r, fmt.Errorf("bench: %s child: %v %s", c.role, err, strings.TrimSpace(c.stderr.String()))
	}
	return r, nil
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// childMain is a bench child's whole life: it reads its childArgs from
// stdin, does its part and reports on stdout. It returns the exit code.
func childMain() int {
	var a childArgs
	enc := json.NewEncoder(os.Stdout)
	err := json.NewDecoder(os.Stdin).Decode(&a)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var r childReport
		switch a.Role {
		case "idle":
		case "receive":
			r, err = childReceive(ctx, a, enc)
		case "send":
			r, err = childSend(ctx, a)
		case "browse-veth":
			r, err = childBrowseVeth(ctx, a)
		default:
			err = fmt.Errorf("unknown role %q", a.Role)
		}
		if err == nil {
			r.MaxRSS, _ = peakRSS()
			err = enc.Encode(r)
		}
	}
	if err != nil {
		enc.Encode(childReport{Error: err.Error()})
		return 1
	}
	return 0
}

func childNode(ctx context.Context, a childArgs, listen bool) (*nearnet.Node, error) {
	key, err := security.ParseKey(a.Key)
	if err != nil {
		return nil, err
	}
	tr, err := nearnet.ParseTransport(a.Transport)
	if err != nil {
		return nil, err
	}
	n, err := nearnet.NewNode(&nearnet.Config{Key: &key, ListenAddr: "127.0.0.1:0", Hidden: true, Transport: tr})
	if err != nil {
		return nil, err
	}
	if listen {
		if err := n.Listen(ctx); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

func childReceive(ctx context.Context, a childArgs, enc *json.Encoder) (childReport, error) {
	n, err := childNode(ctx, a, true)
	if err != nil {
		return childReport{}, err
	}
	defer n.Close()
	if err := enc.Encode(childReport{Addr: n.Addr().String()}); err != nil {
		return childReport{}, err
	}
	c, err := n.Accept(ctx)
	if err != nil {
		return childReport{}, err
	}
	in, err := c.AcceptResource(ctx)
	if err != nil {
		return childReport{}, err
	}
	got, err := in.Accept(ctx, a.Dir, nil, nil)
	if err != nil {
		return childReport{}, err
	}
	// Wait for the sender to hang up, so that the result reached it.
	select {
	case <-c.Done():
	case <-ctx.Done():
		return childReport{}, ctx.Err()
	}
	return childReport{Size: got.Size}, n.Close()
}

func childSend(ctx context.Context, a childArgs) (childReport, error) {
	f, err := os.Open(a.File)
	if err != nil {
		return childReport{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return childReport{}, err
	}
	n, err := childNode(ctx, a, false)
	if err != nil {
		return childReport{}, err
	}
	defer n.Close()
	c, err := n.Connect(ctx, a.Addr)
	if err != nil {
		return childReport{}, err
	}
	t0 := time.Now()
	_, err = c.SendResource(ctx, filepath.Base(a.File), f, fi.Size(), nil)
	d := time.Since(t0)
	if err != nil {
		return childReport{}, err
	}
	c.Close()
	<-c.Done()
	if d <= 0 {
		return childReport{}, errors.New("no time elapsed")
	}
	return childReport{ElapsedNS: int64(d)}, n.Close()
}

// DiskWrite times writing size bytes sequentially to a new file in the
// default temporary directory (where NearnetFile's receiver writes), in
// 1 MiB writes, then fdatasync, as `dd conv=fdatasync` does: the disk's
// durable write speed, which bounds any transfer that must reach the disk.
func DiskWrite(ctx context.Context, size int64) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "nearnet-bench-disk-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "disk.bin"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	start := time.Now()
	for done := int64(0); done < size; done += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n := min(int64(len(buf)), size-done)
		if _, err := f.Write(buf[:n]); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
