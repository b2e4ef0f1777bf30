package tunnel

import (
	"errors"
	"gvisor.dev/gvisor/pkg/buffer"
	"net"
	"sync"
)

// Device carries whole raw IP packets (IPv4 or IPv6, no link header) to and
// from a [Stack]. A Stack calls ReadPacket from one goroutine and
// WritePacket from another.
type Device interface {
	// ReadPacket waits for the next packet addressed to the stack and
	// copies it into p (as large as the MTU), returning its length. An
	// error ends the stack's reading: return one once closed.
	ReadPacket(p []byte) (int, error)

	// WritePacket sends a packet the stack emits. It must not keep p
	// after it returns. A packet it cannot send may be dropped, as a
	// network would: TCP resends.
	WritePacket(p []byte) error

	// Close ends the device; a ReadPacket waiting returns an error.
	Close() error
}

// ErrClosed is returned by a closed Device of this package.
var ErrClosed = net.ErrClosed

// pipeQueue is how many batches of packets a Pipe holds in each direction
// before a writer waits (a Device's WritePacket is a batch of one, a
// Stack's writer sends what it has, up to pipeBatch packets or
// pipeBatchBytes): a bandwidth-delay product of a fast LAN, or more.
const (
	pipeQueue      = 64
	pipeBatch      = 64
	pipeBatchBytes = 256 << 10
)

// Pipe returns the two ends of an in-memory packet pipe: what one end
// writes, the other reads, in order and without loss. A writer waits while
// the other side has pipeQueue batches unread. Closing either end closes
// both.
//
// Two Stacks on the two ends of a Pipe hand each other their packets
// without copying them, in batches, and the receiving one coalesces
// consecutive TCP segments of a batch before its TCP sees them (GRO); it
// does not verify checksums, since nothing in memory corrupts a packet.
func Pipe() (Device, Device) {
	ab, ba := make(chan []buffer.Buffer, pipeQueue), make(chan []buffer.Buffer, pipeQueue)
	s := &pipeState{done: make(chan struct{})}
	return &pipeEnd{in: ba, out: ab, s: s}, &pipeEnd{in: ab, out: ba, s: s}
}

type pipeState struct {
	once sync.Once
	done chan struct{}
}

// pipeEnd is one end of a Pipe: it carries batches of the stack's own
// buffers, which the receiver owns (and releases) once it has them.
type pipeEnd struct {
	in  <-chan []buffer.Buffer
	out chan<- []buffer.Buffer
	s   *pipeState

	batch []buffer.Buffer // what ReadPacket has of a batch, from next on
	next  int
}

func (e *pipeEnd) ReadPacket(p []byte) (int, error) {
	if e.next == len(e.batch) {
		if e.batch != nil {
			freeBatch(e.batch)
			e.batch = nil
		}
		bs, err := e.readBatch()
		if err != nil {
			return 0, err
		}
		e.batch, e.next = bs, 0
	}
	b := e.batch[e.next]
	e.batch[e.next] = buffer.Buffer{}
	e.next++
	n, _ := b.ReadAt(p, 0)
	b.Release()
	return n, nil
}

// readBatch waits for the next batch, which the caller then owns.
func (e *pipeEnd) readBatch() ([]buffer.Buffer, error) {
	select {
	case bs := <-e.in:
		return bs, nil
	case <-e.s.done:
		return nil, ErrClosed
	}
}

func (e *pipeEnd) WritePacket(p []byte) error {
	return e.writeBatch(append(newBatch(), buffer.MakeWithData(p)))
}

// writeBatch sends bs (from newBatch), which the pipe then owns.
func (e *pipeEnd) writeBatch(bs []buffer.Buffer) error {
	select {
	case <-e.s.done:
		release(bs)
		return ErrClosed
	default:
	}
	select {
	case e.out <- bs:
		return nil
	case <-e.s.done:
		release(bs)
		return ErrClosed
	}
}

// batches are slices for batches, with room for pipeBatch packets: the
// reader of a batch puts it back once it took the packets.
var batches = sync.Pool{New: func() any { return new([pipeBatch]buffer.Buffer) }}

// newBatch returns an empty batch.
func newBatch() []buffer.Buffer { return batches.Get().(*[pipeBatch]buffer.Buffer)[:0] }

// freeBatch puts bs, whose packets the caller took, back.
func freeBatch(bs []buffer.Buffer) {
	if cap(bs) == pipeBatch {
		a := (*[pipeBatch]buffer.Buffer)(bs[:pipeBatch])
		clear(a[:])
		batches.Put(a)
	}
}

// release releases the packets of bs, and bs.
func release(bs []buffer.Buffer) {
	for i := range bs {
		bs[i].Release()
	}
	freeBatch(bs)
}

func (e *pipeEnd) Close() error {
	e.s.once.Do(func() { close(e.s.done) })
	return nil
}

// NewFuncDevice makes a Device of two functions: read waits for the next
// packet for the stack and copies it into its argument; write sends one
// (and must not keep its argument). close, if not nil, runs on Close and
// must make a waiting read return an error.
func NewFuncDevice(read func([]byte) (int, error), write func([]byte) error, close func() error) (Device, error) {
	if read == nil || write == nil {
		return nil, errors.New("tunnel: NewFuncDevice needs a read and a write function")
	}
	return funcDevice{read, write, close}, nil
}

type funcDevice struct {
	read  func([]byte) (int, error)
	write func([]byte) error
	close func() error
}

func (d funcDevice) ReadPacket(p []byte) (int, error) { return d.read(p) }
func (d funcDevice) WritePacket(p []byte) error       { return d.write(p) }
func (d funcDevice) Close() error {
	if d.close == nil {
		return nil
	}
	return d.close()
}

// NewChanDevice makes a Device of two channels: the stack reads the
// packets sent on in and sends its own on out (each a slice of its own,
// which the receiver keeps). A send on out waits for the receiver, or
// until Close. Closing in, or Close, ends the stack's reading.
func NewChanDevice(in <-chan []byte, out chan<- []byte) Device {
	return &chanDevice{in: in, out: out, done: make(chan struct{})}
}

type chanDevice struct {
	in   <-chan []byte
	out  chan<- []byte
	once sync.Once
	done chan struct{}
}

func (d *chanDevice) ReadPacket(p []byte) (int, error) {
	select {
	case b, ok := <-d.in:
		if !ok {
			return 0, ErrClosed
		}
		return copy(p, b), nil
	case <-d.done:
		return 0, ErrClosed
	}
}

func (d *chanDevice) WritePacket(p []byte) error {
	b := append([]byte(nil), p...)
	select {
	case d.out <- b:
		return nil
	case <-d.done:
		return ErrClosed
	}
}

func (d *chanDevice) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}
