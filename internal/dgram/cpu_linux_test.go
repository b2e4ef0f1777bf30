package dgram

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration, delivered int64) {
	if delivered > 0 && since > 0 {
		b.ReportMetric(float64(cpuTime()-since)/float64(delivered), "cpu-ns/dgram")
	}
}
