//go:build !linux

package pathmon

import "errors"

var errNoNetlink = errors.New("pathmon: netlink is not available on this system")

type nlWatcher struct{}

func startNetlink(*Monitor) (*nlWatcher, error) { return nil, errNoNetlink }

func (*nlWatcher) run()  {}
func (*nlWatcher) stop() {}
