package tunnel

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// tcpConn is a TCP connection of the stack. Beyond net.Conn it has
// SetKeepAliveConfig and SetUserTimeout, as the host's TCP sockets have
// keepalive and TCP_USER_TIMEOUT.
type tcpConn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
}

func newTCPConn(wq *waiter.Queue, ep tcpip.Endpoint) *tcpConn {
	return &tcpConn{TCPConn: gonet.NewTCPConn(wq, ep), ep: ep}
}

func (c *tcpConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	return n, mapErr(err)
}

func (c *tcpConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	return n, mapErr(err)
}

// SetKeepAliveConfig turns keepalive probes on or off, as
// net.TCPConn.SetKeepAliveConfig does.
func (c *tcpConn) SetKeepAliveConfig(kc net.KeepAliveConfig) error {
	if kc.Idle > 0 {
		o := tcpip.KeepaliveIdleOption(kc.Idle)
		if err := c.ep.SetSockOpt(&o); err != nil {
			return errors.New(err.String())
		}
	}
	if kc.Interval > 0 {
		o := tcpip.KeepaliveIntervalOption(kc.Interval)
		if err := c.ep.SetSockOpt(&o); err != nil {
			return errors.New(err.String())
		}
	}
	if kc.Count > 0 {
		if err := c.ep.SetSockOptInt(tcpip.KeepaliveCountOption, kc.Count); err != nil {
			return errors.New(err.String())
		}
	}
	c.ep.SocketOptions().SetKeepAlive(kc.Enable)
	return nil
}

// SetUserTimeout fails the connection when data stays unacknowledged for
// d (TCP_USER_TIMEOUT); 0 turns it off.
func (c *tcpConn) SetUserTimeout(d time.Duration) error {
	o := tcpip.TCPUserTimeoutOption(d)
	if err := c.ep.SetSockOpt(&o); err != nil {
		return errors.New(err.String())
	}
	return nil
}

// SetLinger(0) makes Close reset the connection, as on a host socket.
func (c *tcpConn) SetLinger(sec int) error {
	c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: sec >= 0, Timeout: time.Duration(max(sec, 0)) * time.Second})
	return nil
}

// tcpErr turns the stack's error into the net package's: a refusal is
// ECONNREFUSED, as from the host.
func tcpErr(err tcpip.Error) error {
	switch err.(type) {
	case *tcpip.ErrConnectionRefused:
		return syscall.ECONNREFUSED
	case *tcpip.ErrConnectionReset:
		return syscall.ECONNRESET
	case *tcpip.ErrTimeout:
		return syscall.ETIMEDOUT
	case *tcpip.ErrHostUnreachable:
		return syscall.EHOSTUNREACH
	case *tcpip.ErrNetworkUnreachable:
		return syscall.ENETUNREACH
	case *tcpip.ErrBadLocalAddress:
		return syscall.EADDRNOTAVAIL
	}
	return errors.New(err.String())
}

// dialTCP connects to fa, until ctx ends.
func dialTCP(ctx context.Context, s *stack.Stack, fa tcpip.FullAddress, proto tcpip.NetworkProtocolNumber) (*tcpConn, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, tcpErr(terr)
	}
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if err := ctx.Err(); err != nil {
		ep.Close()
		return nil, err
	}
	terr = ep.Connect(fa)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		case <-ch:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, tcpErr(terr)
	}
	return newTCPConn(&wq, ep), nil
}

// listener is a TCP listener of the stack.
type listener struct {
	ep   tcpip.Endpoint
	wq   *waiter.Queue
	once sync.Once
	done chan struct{}
}

// listenBacklog is the listener's queue of connections not yet accepted.
const listenBacklog = 1024

func listenTCP(s *stack.Stack, fa tcpip.FullAddress, proto tcpip.NetworkProtocolNumber) (*listener, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, tcpErr(terr)
	}
	if terr := ep.Bind(fa); terr != nil {
		ep.Close()
		if _, ok := terr.(*tcpip.ErrPortInUse); ok {
			return nil, syscall.EADDRINUSE
		}
		return nil, tcpErr(terr)
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, tcpErr(terr)
	}
	return &listener{ep: ep, wq: &wq, done: make(chan struct{})}, nil
}

func (l *listener) Accept() (net.Conn, error) {
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		n, wq, terr := l.ep.Accept(nil)
		if terr == nil {
			return newTCPConn(wq, n), nil
		}
		if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
			select {
			case <-l.done:
				return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
			default:
			}
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: tcpErr(terr)}
		}
		select {
		case <-l.done:
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
		case <-ch:
		}
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.ep.Close()
	})
	return nil
}

func (l *listener) Addr() net.Addr {
	a, err := l.ep.GetLocalAddress()
	if err != nil {
		return &net.TCPAddr{}
	}
	return &net.TCPAddr{IP: net.IP(a.Addr.AsSlice()), Port: int(a.Port)}
}
