package tunnel

import (
	"errors"
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

// pipeQueue is how many packets a Pipe holds in each direction before a
// writer waits: about a bandwidth-delay product of a fast LAN.
const pipeQueue = 512

// Pipe returns the two ends of an in-memory packet pipe: what one end
// writes, the other reads, in order and without loss. A writer waits while
// the other side has pipeQueue packets unread. Closing either end closes
// both.
func Pipe() (Device, Device) {
	ab, ba := make(chan []byte, pipeQueue), make(chan []byte, pipeQueue)
	s := &pipeState{done: make(chan struct{})}
	return &pipeEnd{in: ba, out: ab, s: s}, &pipeEnd{in: ab, out: ba, s: s}
}

type pipeState struct {
	once sync.Once
	done chan struct{}
}

type pipeEnd struct {
	in  <-chan []byte
	out chan<- []byte
	s   *pipeState
}

func (e *pipeEnd) ReadPacket(p []byte) (int, error) {
	select {
	case b := <-e.in:
		return copy(p, b), nil
	case <-e.s.done:
		return 0, ErrClosed
	}
}

func (e *pipeEnd) WritePacket(p []byte) error {
	select {
	case <-e.s.done:
		return ErrClosed
	default:
	}
	b := append([]byte(nil), p...)
	select {
	case e.out <- b:
		return nil
	case <-e.s.done:
		return ErrClosed
	}
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
