package pathmon

import (
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// privateNS is true when the test binary started in a network namespace
// of its own holding nothing but loopback, as `go test -exec
// .ci/netns-exec` arranges. Tests that add interfaces need it, so that they
// never touch the machine's own network.
var privateNS bool

func TestMain(m *testing.M) {
	ifis, err := net.Interfaces()
	privateNS = err == nil && len(ifis) == 1 && ifis[0].Name == "lo" && os.Geteuid() == 0
	goleak.VerifyTestMain(m)
}
