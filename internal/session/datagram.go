package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/nearnet/nearnet/internal/dgram"
)

// Best-effort datagrams go on the flow of the send link; the flow of a
// link closes with the link, except the last one's after the peer closed,
// which drains for DatagramLinger.

// SendDatagram sends p on the send link's flow; see the root's
// Conn.SendDatagram. A payload too large fails with dgram's error; a flow
// that is missing or expired with Config.ErrNoDatagrams.
func (s *Session) SendDatagram(p []byte) error {
	l := s.links.Send()
	if l == nil {
		return s.SendEnded() // nil between two links: best effort, this one is dropped
	}
	if l.Flow == nil {
		return s.cfg.ErrNoDatagrams
	}
	err := l.Flow.Send(p)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dgram.ErrExpired):
		return fmt.Errorf("%w: %v", s.cfg.ErrNoDatagrams, err)
	case errors.Is(err, dgram.ErrClosed):
		return nil // the link is being replaced; best effort
	}
	return err
}

// ReceiveDatagram returns the next datagram from the send link's flow (or
// the draining one), waiting across links; see the root's
// Conn.ReceiveDatagram.
func (s *Session) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	for {
		f, linkCh, err := s.Flow()
		if errors.Is(err, ErrNoFlow) {
			return nil, s.cfg.ErrNoDatagrams
		}
		if err != nil {
			return nil, err
		}
		if f != nil {
			p, err := f.Receive(ctx)
			switch {
			case err == nil:
				return p, nil
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(err, dgram.ErrExpired):
				return nil, fmt.Errorf("%w: %v", s.cfg.ErrNoDatagrams, err)
			case linkCh == nil:
				continue // the draining flow closed: report the session's end
			}
			// The flow closed with its link: wait for the session to move on.
		}
		select {
		case <-linkCh:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// MaxDatagramSize returns the largest payload the send link's flow takes
// now, 0 without one.
func (s *Session) MaxDatagramSize() int {
	if l := s.links.Send(); l != nil && l.Flow != nil {
		return l.Flow.MaxSize()
	}
	return 0
}
