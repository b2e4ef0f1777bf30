package nearnet

import (
	"errors"
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
