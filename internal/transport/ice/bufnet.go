package ice

import (
	"net"

	ptransport "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/nearnet/nearnet/internal/quict"
)

// bufNet is the machine's network for pion, with the socket buffers QUIC
// needs on every UDP socket an agent opens (its host candidates, its TURN
// client's socket): with the default ones (about 200 KiB) a QUIC stream at
// full speed overflowed them, and each drop halved its congestion window
// (measured on loopback: a few hundred drops per 256 MiB on a direct and on
// a relayed path).
type bufNet struct{ *stdnet.Net }

func newBufNet() (ptransport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return bufNet{n}, nil
}

func (n bufNet) ListenUDP(network string, laddr *net.UDPAddr) (ptransport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if uc, ok := c.(*net.UDPConn); ok {
		quict.RaiseBuffers(uc)
	}
	return c, err
}

func (n bufNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if uc, ok := c.(*net.UDPConn); ok {
		quict.RaiseBuffers(uc)
	}
	return c, err
}
