package tunnel

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The stack's sockets speak the net package's errors: a deadline is
// os.ErrDeadlineExceeded (gonet's own timeout error only says Timeout),
// and a closed listener or packet socket is net.ErrClosed.

// stackErrs are the stack's errors as gonet gives them (their text
// alone), with the system's errors a host socket gives for them.
var stackErrs = map[string]error{
	(&tcpip.ErrTimeout{}).String():            syscall.ETIMEDOUT,
	(&tcpip.ErrConnectionReset{}).String():    syscall.ECONNRESET,
	(&tcpip.ErrConnectionAborted{}).String():  syscall.ECONNABORTED,
	(&tcpip.ErrConnectionRefused{}).String():  syscall.ECONNREFUSED,
	(&tcpip.ErrHostUnreachable{}).String():    syscall.EHOSTUNREACH,
	(&tcpip.ErrNetworkUnreachable{}).String(): syscall.ENETUNREACH,
	(&tcpip.ErrClosedForSend{}).String():      syscall.EPIPE,
}

// mapErr turns gonet's errors into the net package's: its timeout into
// os.ErrDeadlineExceeded, the stack's errors into the system's (above),
// keeping the *net.OpError around them.
func mapErr(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		if e, ok := stackErrs[oe.Err.Error()]; ok {
			c := *oe
			c.Err = e
			return &c
		}
	}
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if oe, ok := err.(*net.OpError); ok {
		c := *oe
		c.Err = os.ErrDeadlineExceeded
		return &c
	}
	return os.ErrDeadlineExceeded
}

// udpConn is a UDP socket of the stack.
type udpConn struct {
	*gonet.UDPConn
	ep     tcpip.Endpoint
	closed atomic.Bool
}

// dialUDP opens a UDP socket of the stack bound to laddr (nil: any) and,
// if raddr is not nil, connected to it.
func dialUDP(s *stack.Stack, laddr, raddr *tcpip.FullAddress, proto tcpip.NetworkProtocolNumber) (*udpConn, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, tcpErr(terr)
	}
	if laddr != nil {
		if terr := ep.Bind(*laddr); terr != nil {
			ep.Close()
			if _, ok := terr.(*tcpip.ErrPortInUse); ok {
				return nil, syscall.EADDRINUSE
			}
			return nil, tcpErr(terr)
		}
	}
	if raddr != nil {
		if terr := ep.Connect(*raddr); terr != nil {
			ep.Close()
			return nil, tcpErr(terr)
		}
	}
	return &udpConn{UDPConn: gonet.NewUDPConn(&wq, ep), ep: ep}, nil
}

func (c *udpConn) err(err error) error {
	if err != nil && c.closed.Load() {
		return net.ErrClosed
	}
	return mapErr(err)
}

func (c *udpConn) Read(p []byte) (int, error) {
	n, err := c.UDPConn.Read(p)
	return n, c.err(err)
}

func (c *udpConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.UDPConn.ReadFrom(p)
	return n, from, c.err(err)
}

func (c *udpConn) Write(p []byte) (int, error) {
	n, err := c.UDPConn.Write(p)
	return n, c.err(err)
}

// WriteTo takes a *net.UDPAddr, as a host socket's does.
func (c *udpConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if _, ok := addr.(*net.UDPAddr); !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("tunnel: want a *net.UDPAddr")}
	}
	n, err := c.UDPConn.WriteTo(p, addr)
	return n, c.err(err)
}

// SetReadBuffer and SetWriteBuffer size the socket's buffers, as a host
// socket's SO_RCVBUF and SO_SNDBUF (quic-go raises them).
func (c *udpConn) SetReadBuffer(n int) error {
	c.ep.SocketOptions().SetReceiveBufferSize(int64(n), true)
	return nil
}

func (c *udpConn) SetWriteBuffer(n int) error {
	c.ep.SocketOptions().SetSendBufferSize(int64(n), true)
	return nil
}

func (c *udpConn) Close() error {
	c.closed.Store(true)
	return c.UDPConn.Close()
}
