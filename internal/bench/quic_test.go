package bench

import (
	"context"
	"testing"
	"time"
)

// TestRawQUIC runs each raw QUIC baseline with tiny counts: it checks that
// each completes and returns sane figures, never how fast they are.
func TestRawQUIC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cs, err := RawQUICConnect(ctx, 3)
	if err != nil || len(cs) != 3 || cs[0] <= 0 {
		t.Fatalf("RawQUICConnect: %v, %v", cs, err)
	}
	d, err := RawQUICBulk(ctx, 64<<10, 16)
	if err != nil || d <= 0 {
		t.Fatalf("RawQUICBulk: %v, %v", d, err)
	}
	ds, err := RawQUICPingPong(ctx, 64, 10)
	if err != nil || len(ds) != 10 || ds[0] <= 0 {
		t.Fatalf("RawQUICPingPong: %v, %v", ds, err)
	}
	r, err := RawQUICDatagrams(ctx, 1200, 500)
	if err != nil || r.Sent != 500 || r.Delivered == 0 || r.Rate() <= 0 {
		t.Fatalf("RawQUICDatagrams: %+v, %v", r, err)
	}
	t.Logf("connect %v, bulk 1 MiB %v, ping-pong %v, datagrams %.0f/s (%.1f%% lost)", percentile(cs, 0.5), d, percentile(ds, 0.5), r.Rate(), r.LossPercent())
	if _, err := RawQUICDatagrams(ctx, 1<<15, 10); err == nil {
		t.Fatal("RawQUICDatagrams took a 32 KiB datagram")
	}
}
