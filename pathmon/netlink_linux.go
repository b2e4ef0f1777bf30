//go:build linux

package pathmon

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var errNoNetlink = errors.New("pathmon: netlink is not available on this system")

// nlWatcher follows rtnetlink link and address notifications (one
// subscription each, as vishvananda/netlink offers them). Anything that may
// have lost a notification (a receive error such as ENOBUFS when the
// socket overflowed, a message that did not decode) makes it subscribe
// again and read the whole state, so the monitor never stays wrong.
type nlWatcher struct {
	m *Monitor

	// One subscription generation; replaced on resync.
	subDone chan struct{} // closing it closes both sockets
	linkCh  chan netlink.LinkUpdate
	addrCh  chan netlink.AddrUpdate
	errCh   chan error // capacity 1, from the error callbacks
}

const maxRetryInterval = 30 * time.Second

func startNetlink(m *Monitor) (*nlWatcher, error) {
	w := &nlWatcher{m: m}
	if err := w.subscribe(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *nlWatcher) subscribe() error {
	subDone := make(chan struct{})
	errCh := make(chan error, 1)
	cb := func(err error) {
		select {
		case errCh <- err:
		default:
		}
	}
	linkCh := make(chan netlink.LinkUpdate, 64)
	addrCh := make(chan netlink.AddrUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(linkCh, subDone, netlink.LinkSubscribeOptions{ErrorCallback: cb}); err != nil {
		close(subDone)
		return err
	}
	if err := netlink.AddrSubscribeWithOptions(addrCh, subDone, netlink.AddrSubscribeOptions{ErrorCallback: cb}); err != nil {
		close(subDone)
		for range linkCh { // until its goroutine has seen the socket closed
		}
		return err
	}
	w.subDone, w.linkCh, w.addrCh, w.errCh = subDone, linkCh, addrCh, errCh
	return nil
}

// stop ends the current subscription and waits for the library's
// goroutines: they may be blocked sending to the channels, so those are
// drained until the library closes them.
func (w *nlWatcher) stop() {
	if w.subDone == nil {
		return
	}
	close(w.subDone)
	for range w.linkCh {
	}
	for range w.addrCh {
	}
	w.subDone, w.linkCh, w.addrCh, w.errCh = nil, nil, nil, nil
}

func (w *nlWatcher) run() {
	defer w.stop()
	var retry *time.Timer
	var retryC <-chan time.Time
	retryIv := w.m.interval
	resync := func(why error) {
		w.m.log.Debug("pathmon: netlink resync", "reason", why)
		w.stop()
		err := w.subscribe()
		if snap, serr := systemSnapshot(); serr == nil {
			w.m.replaceAll(snap)
		} else {
			w.m.log.Warn("pathmon: cannot read interfaces", "err", serr)
		}
		if err != nil {
			// Poll at the retry interval until netlink is back.
			w.m.log.Warn("pathmon: netlink subscription failed, polling", "retry", retryIv, "err", err)
			if retry == nil {
				retry = time.NewTimer(retryIv)
			} else {
				retry.Reset(retryIv)
			}
			retryC = retry.C
			retryIv = min(2*retryIv, max(maxRetryInterval, w.m.interval))
			return
		}
		retryC, retryIv = nil, w.m.interval
	}
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-w.m.done:
			return
		case u, ok := <-w.linkCh:
			if !ok {
				resync(errors.New("link subscription ended"))
				continue
			}
			w.link(u)
		case u, ok := <-w.addrCh:
			if !ok {
				resync(errors.New("address subscription ended"))
				continue
			}
			w.addr(u)
		case err := <-w.errCh:
			resync(err)
		case <-retryC:
			resync(errors.New("retrying netlink"))
		}
	}
}

func (w *nlWatcher) link(u netlink.LinkUpdate) {
	if u.Family == unix.AF_BRIDGE {
		return // bridge port notifications, not the link itself
	}
	idx := int(u.Index)
	if u.Header.Type == unix.RTM_DELLINK {
		w.m.set(idx, nil)
		return
	}
	i := ifaceOf(u.Link, u.Flags)
	if old, ok := w.m.lookup(idx); ok && old.Name == i.Name {
		i.Prefixes = old.Prefixes
	} else {
		i.Prefixes = linkPrefixes(u.Link)
	}
	w.m.set(idx, &i)
}

func (w *nlWatcher) addr(u netlink.AddrUpdate) {
	p, ok := prefixOf(&u.LinkAddress)
	if !ok {
		return
	}
	if w.m.setAddr(u.LinkIndex, p, u.NewAddr) || !u.NewAddr {
		return
	}
	// An address of a link we have not heard of: its link notification
	// comes on the other socket and may not be here yet.
	l, err := netlink.LinkByIndex(u.LinkIndex)
	if err != nil {
		return // gone again
	}
	i := ifaceOf(l, l.Attrs().RawFlags)
	i.Prefixes = linkPrefixes(l)
	if !containsPrefix(i.Prefixes, p) {
		return // removed again since; a notification says so
	}
	w.m.set(u.LinkIndex, &i)
}

func ifaceOf(l netlink.Link, raw uint32) Interface {
	a := l.Attrs()
	return Interface{Index: a.Index, Name: a.Name, MTU: a.MTU, Flags: linuxFlags(raw)}
}

func linkPrefixes(l netlink.Link) []netip.Prefix {
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var ps []netip.Prefix
	for _, a := range as {
		if a.IPNet == nil {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			ps = addPrefix(ps, p)
		}
	}
	return ps
}

// linuxFlags converts IFF_* flags as the net package does on Linux.
func linuxFlags(raw uint32) net.Flags {
	var f net.Flags
	for _, m := range []struct {
		iff  uint32
		flag net.Flags
	}{
		{unix.IFF_UP, net.FlagUp},
		{unix.IFF_BROADCAST, net.FlagBroadcast},
		{unix.IFF_LOOPBACK, net.FlagLoopback},
		{unix.IFF_POINTOPOINT, net.FlagPointToPoint},
		{unix.IFF_MULTICAST, net.FlagMulticast},
		{unix.IFF_RUNNING, net.FlagRunning},
	} {
		if raw&m.iff != 0 {
			f |= m.flag
		}
	}
	return f
}
