package nearnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nearnet/nearnet/internal/wire"
)

func randomFile(t testing.TB, dir string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// receiveOne accepts the next offer on c into dir.
func receiveOne(ctx context.Context, c *Conn, dir string, opts *AcceptOptions) (ReceivedResource, *IncomingResource, error) {
	in, err := c.AcceptResource(ctx)
	if err != nil {
		return ReceivedResource{}, nil, err
	}
	got, err := in.Accept(ctx, dir, opts, nil)
	return got, in, err
}

func TestResourceTransfer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		for name, cfgs := range streamModes() {
			for _, fromListener := range []bool{false, true} {
				t.Run(name, func(t *testing.T) {
					a, b := newNodeOn(t, tr, cfgs[0]), newNodeOn(t, tr, cfgs[1])
					ca, cb := pair(t, a, b)
					sender, receiver := ca, cb
					if fromListener {
						sender, receiver = cb, ca
					}
					src, data := randomFile(t, t.TempDir(), 3<<20+17)
					dst := t.TempDir()
					ctx := ctxT(t)
					type res struct {
						got ReceivedResource
						in  *IncomingResource
						err error
					}
					ch := make(chan res, 1)
					go func() {
						got, in, err := receiveOne(ctx, receiver, dst, nil)
						ch <- res{got, in, err}
					}()
					f, _ := os.Open(src)
					defer f.Close()
					var last atomic.Int64
					sent, err := sender.SendResourceOffer(ctx, ResourceOffer{Name: "dir/data.bin", Size: int64(len(data)), Meta: map[string]string{"type": "application/octet-stream"}}, f, func(done, total int64) { last.Store(done) })
					if err != nil {
						t.Fatal(err)
					}
					r := <-ch
					if r.err != nil {
						t.Fatal(r.err)
					}
					if r.in.Name != "dir/data.bin" || r.in.Size != int64(len(data)) || r.in.Meta["type"] != "application/octet-stream" || r.in.Peer.ID != sender.n.ID() {
						t.Fatalf("offer seen as %+v", r.in)
					}
					if r.got.SHA256 != sha256.Sum256(data) || last.Load() != int64(len(data)) {
						t.Fatalf("received %+v, progress ended at %d", r.got, last.Load())
					}
					if (sent != SentResource{SHA256: r.got.SHA256}) {
						t.Fatalf("sender reports %+v, want the receiver's SHA-256 %x and no resume", sent, r.got.SHA256)
					}
					onDisk, _ := os.ReadFile(filepath.Join(dst, "dir", "data.bin"))
					if !bytes.Equal(onDisk, data) {
						t.Fatal("file content differs")
					}
				})
			}
		}
	})
}

func TestResourceRejectAndExisting(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		ctx := ctxT(t)
		dst := t.TempDir()
		go func() {
			in, err := cb.AcceptResource(ctx)
			if err == nil {
				in.Reject(ctx, "not now")
			}
		}()
		_, err := ca.SendResource(ctx, "x.txt", bytes.NewReader([]byte("hi")), 2, nil)
		var re *ResourceRejectedError
		if !errors.As(err, &re) || re.Reason != "not now" {
			t.Fatalf("rejected offer: %v", err)
		}
		os.WriteFile(filepath.Join(dst, "x.txt"), []byte("mine"), 0o644)
		go receiveOne(ctx, cb, dst, nil)
		_, err = ca.SendResource(ctx, "x.txt", bytes.NewReader([]byte("hi")), 2, nil)
		if !errors.Is(err, ErrResourceExists) {
			t.Fatalf("existing name: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "x.txt")); string(b) != "mine" {
			t.Fatalf("existing file now holds %q", b)
		}
		// Names from the network cannot escape the directory: the sender
		// refuses them before offering.
		for _, bad := range []string{"../x", "/etc/passwd", "", "a\x00b", `a\b`} {
			if _, err := ca.SendResource(ctx, bad, bytes.NewReader(nil), 0, nil); err == nil {
				t.Errorf("name %q was sent", bad)
			}
		}
	})
}

// An offer with an unsafe name from a peer that skips the sender's own
// checks is refused before AcceptResource: the sender reads why, and
// OnResourceRefused sees the name.
func TestResourceUnsafeOfferRefused(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		refused := make(chan error, 1)
		a := newNodeOn(t, tr, Config{})
		b := newNodeOn(t, tr, Config{OnResourceRefused: func(p Peer, err error) { refused <- err }})
		ca, cb := pair(t, a, b)
		ctx := ctxT(t)
		s, err := ca.openStream(ctx, "", nil, wire.StreamKindResource)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		body := []byte(`{"v":1,"name":"../outside","size":1}`)
		if _, err := s.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
			t.Fatal(err)
		}
		var hdr [4]byte
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			t.Fatalf("no answer to an unsafe offer: %v", err)
		}
		reply := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(s, reply); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(reply, []byte(`"code":"unsafe_name"`)) || bytes.Contains(reply, []byte(`"accept":true`)) {
			t.Errorf("answer to an unsafe offer: %s", reply)
		}
		select {
		case err := <-refused:
			if ne, ok := errorsAs[*ResourceNameError](err); !ok || ne.Name != "../outside" {
				t.Errorf("OnResourceRefused: %v; want a ResourceNameError for ../outside", err)
			}
		case <-ctx.Done():
			t.Fatal("OnResourceRefused not called")
		}
		// Nothing reaches AcceptResource.
		actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if in, err := cb.AcceptResource(actx); err == nil {
			t.Errorf("AcceptResource returned the refused offer %v", in)
		}
	})
}

// A transfer cut off half way resumes from what the receiver verified.
func TestResourceResume(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr Transport) {
		a, b := newNodeOn(t, tr, Config{}), newNodeOn(t, tr, Config{})
		ca, cb := pair(t, a, b)
		src, data := randomFile(t, t.TempDir(), 8<<20)
		dst := t.TempDir()
		ctx := ctxT(t)
		f, _ := os.Open(src)
		defer f.Close()

		// First attempt: the sender gives up after about 2 MiB.
		recv := make(chan error, 1)
		go func() {
			_, _, err := receiveOne(ctx, cb, dst, nil)
			recv <- err
		}()
		sctx, cancel := context.WithCancel(ctx)
		_, err := ca.SendResource(sctx, "big.bin", f, int64(len(data)), func(done, total int64) {
			if done >= 2<<20 {
				cancel()
			}
		})
		cancel()
		if err == nil {
			t.Fatal("cancelled transfer succeeded")
		}
		if err := <-recv; err == nil {
			t.Fatal("receiver finished a cancelled transfer")
		}
		if _, err := os.Stat(filepath.Join(dst, "big.bin")); !os.IsNotExist(err) {
			t.Fatalf("final name exists after a failed transfer: %v", err)
		}

		// Second attempt continues.
		type res struct {
			got ReceivedResource
			err error
		}
		ch := make(chan res, 1)
		go func() {
			got, _, err := receiveOne(ctx, cb, dst, nil)
			ch <- res{got, err}
		}()
		var first atomic.Int64
		first.Store(-1)
		if _, err := ca.SendResource(ctx, "big.bin", f, int64(len(data)), func(done, total int64) { first.CompareAndSwap(-1, done) }); err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.got.Resumed == 0 || first.Load() == 0 {
			t.Fatalf("second attempt started from zero (resumed %d)", r.got.Resumed)
		}
		onDisk, _ := os.ReadFile(filepath.Join(dst, "big.bin"))
		if sha256.Sum256(onDisk) != sha256.Sum256(data) {
			t.Fatal("resumed file differs")
		}
	})
}

// Bytes corrupted on the way are caught by the SHA-256 and the file is
// not put in place. Without TLS (SecurityNone) nothing else would notice:
// a relay between the peers flips one bit of the resource stream.
func TestResourceCorruptionDetected(t *testing.T) {
	a := newNode(t, Config{Security: SecurityNone})
	b := newNode(t, Config{Security: SecurityNone})
	relay := corruptingRelay(t, b.Addr().String(), 1<<20)
	ctx := ctxT(t)
	ca, err := a.Connect(ctx, relay)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	recv := make(chan error, 1)
	go func() {
		_, _, err := receiveOne(ctx, cb, dst, nil)
		recv <- err
	}()
	data := make([]byte, 4<<20)
	_, err = ca.SendResource(ctx, "c.bin", bytes.NewReader(data), int64(len(data)), nil)
	if !errors.Is(err, ErrResourceCorrupted) {
		t.Fatalf("sender: %v", err)
	}
	if err := <-recv; !errors.Is(err, ErrResourceCorrupted) {
		t.Fatalf("receiver: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "c.bin")); !os.IsNotExist(err) {
		t.Fatal("a corrupted file was put in place")
	}
}

// corruptingRelay forwards TCP connections to target; in those that start
// with the stream magic it flips one bit at byte offset at.
func corruptingRelay(t *testing.T, target string, at int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				io.Copy(c, d)
				c.Close()
			}()
			go func() {
				defer wg.Done()
				defer d.Close()
				buf := make([]byte, 32<<10)
				var off int64
				stream := false
				for {
					n, err := c.Read(buf)
					if off == 0 && n >= 4 && string(buf[:4]) == "NNS1" {
						stream = true
					}
					if stream && off <= at && at < off+int64(n) {
						buf[at-off] ^= 0x10
					}
					off += int64(n)
					if _, werr := d.Write(buf[:n]); werr != nil || err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
