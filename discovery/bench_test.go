package discovery

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkBrowseToResolved measures, on loopback, the time from starting a
// browser (sockets included) to its Found event for a service a responder
// already advertises: SRV, TXT and an address known. It reports the median
// and 90th percentile besides the mean (ns/op).
//
//	unshare -n sh -c 'ip link set lo up && go test -run '^$' -bench BrowseToResolved ./discovery'
func BenchmarkBrowseToResolved(b *testing.B) {
	typ := testType(b)
	r := mustResponder(b, loConfig(b))
	register(b, r, Service{Instance: "Bench", Type: typ, Port: 4242, TXT: map[string]string{"id": "0123456789abcdef"}})
	var lat []time.Duration
	for b.Loop() {
		found := make(chan struct{}, 1)
		start := time.Now()
		br, err := NewBrowser(loConfig(b), typ, func(ev Event) {
			if ev.Kind == Found {
				select {
				case found <- struct{}{}:
				default:
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-found:
			lat = append(lat, time.Since(start))
		case <-time.After(10 * time.Second):
			b.Fatal("not resolved within 10s")
		}
		br.Close()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}
