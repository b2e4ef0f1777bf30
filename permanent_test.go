package nearnet

import (
	"errors"
	"testing"

	"github.com/nearnet/nearnet/security"
)

// TestRetryConnectStopsAtPermanentFailures: with RetryConnect, a failure
// that another try would repeat ends Connect at once with that cause
// alone: a wrong key, an identity the dialer does not trust, an identity
// the listener does not trust. (Were they retried, Connect would end with
// its context's deadline instead.)
func TestRetryConnectStopsAtPermanentFailures(t *testing.T) {
	other, _ := security.GenerateKey()
	stranger := security.Fingerprint{1, 2, 3}
	for _, tc := range []struct {
		name             string
		dialer, listener Config
		check            func(error) bool
	}{
		{"wrong key", Config{Key: &other}, Config{}, func(err error) bool { return errors.Is(err, ErrKeyMismatch) }},
		{"untrusted listener", Config{Trust: []security.Fingerprint{stranger}}, Config{},
			func(err error) bool { var u *security.UntrustedPeerError; return errors.As(err, &u) }},
		{"untrusted dialer", Config{}, Config{Trust: []security.Fingerprint{stranger}},
			func(err error) bool { var r *RejectedError; return errors.As(err, &r) && r.Code == 4003 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newNodeOn(t, TransportTCP, tc.listener)
			tc.dialer.RetryConnect, tc.dialer.DisablePathMonitor = true, true
			a := newNodeOn(t, TransportTCP, tc.dialer)
			ctx := ctxT(t)
			_, err := a.Connect(ctx, b.Addr().String())
			if ctx.Err() != nil || !tc.check(err) {
				t.Fatalf("Connect: %v (ctx %v); want the permanent failure at once", err, ctx.Err())
			}
		})
	}
}
