//go:build !linux

package tunnel

import (
	"errors"
	"fmt"
)

// OpenTUN opens a TUN device on Linux only; elsewhere, hand the device's
// descriptor to [NewFileDevice] (with its packet framing removed) or use
// [NewFuncDevice].
func OpenTUN(name string) (dev Device, mtu int, err error) {
	return nil, 0, fmt.Errorf("tunnel: OpenTUN %q: %w", name, errors.ErrUnsupported)
}
