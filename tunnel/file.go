package tunnel

import (
	"io"
	"os"
)

// NewFileDevice makes a Device of a file whose reads and writes are whole
// IP packets: a TUN device's file descriptor (Linux's with IFF_NO_PI, as
// [OpenTUN] opens it, or one handed over by a VPN framework). The Device
// owns f: Close closes it. f should be in non-blocking mode (as
// os.NewFile makes a pollable descriptor) so that Close ends a waiting
// read.
func NewFileDevice(f *os.File) Device { return fileDevice{f} }

type fileDevice struct{ f *os.File }

func (d fileDevice) ReadPacket(p []byte) (int, error) {
	n, err := d.f.Read(p)
	if err == io.EOF {
		err = ErrClosed
	}
	return n, err
}

func (d fileDevice) WritePacket(p []byte) error {
	_, err := d.f.Write(p)
	return err
}

func (d fileDevice) Close() error { return d.f.Close() }
