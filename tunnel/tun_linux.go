package tunnel

import (
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// OpenTUN opens the TUN device name (creating it, for as long as it is
// open, when no such device exists), sets its link up, and returns it as
// a Device with its MTU. The host's side of the device (its address and
// routes) is the system's configuration, not the Stack's: packets the
// kernel routes into the device reach the Stack, and what the Stack sends
// enters the kernel's routing as if it came in on that interface. It
// needs CAP_NET_ADMIN (or a persistent device owned by the user).
func OpenTUN(name string) (dev Device, mtu int, err error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("tunnel: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("tunnel: TUN name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("tunnel: attach to TUN device %q: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
	link, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetUp(link)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("tunnel: set TUN device %q up: %w", name, err)
	}
	return NewFileDevice(f), link.Attrs().MTU, nil
}
