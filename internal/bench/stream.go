package bench

import (
	"context"
	"time"

	"github.com/nearnet/nearnet"
)

// NearnetStreamBulk writes count size-byte writes on a nearnet stream
// (Conn.OpenStream, pre-shared-key mode: TLS 1.3 over TCP, or a QUIC
// stream over TransportQUIC) and returns the time
// until the last byte was read on the other side, into one reused buffer.
// Its baseline is RawBulk (RawQUICBulk over QUIC); neither counts the
// connection's setup.
func NearnetStreamBulk(ctx context.Context, tr nearnet.Transport, size, count int) (time.Duration, error) {
	p, err := newNNPair(ctx, tr)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	return streamBulkOn(ctx, p, size, count)
}

// streamBulkOn is NearnetStreamBulk on the pair p.
func streamBulkOn(ctx context.Context, p *nnPair, size, count int) (time.Duration, error) {
	sa, err := p.ca.OpenStream(ctx, "bulk")
	if err != nil {
		return 0, err
	}
	defer sa.Abort()
	sb, err := p.cb.AcceptStream(ctx)
	if err != nil {
		return 0, err
	}
	defer sb.Abort()
	stop := context.AfterFunc(ctx, func() { sa.Abort(); sb.Abort() })
	defer stop()
	return bulkCopy(sa, sb, size, count)
}
