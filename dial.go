package nearnet

import (
	"errors"
	"time"
)

var errNoTransport = errors.New("nearnet: the peer offers no transport this node dials")

// spawn runs f in the background until the node closes (a dial of
// session.Dials.Race).
func (n *Node) spawn(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// aLongTimeAgo is a deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)
