package advert

import (
	"strings"

	"github.com/nearnet/nearnet/internal/transport"
)

// Types are the DNS-SD service types of ts for service: the TCP one, the
// UDP one (QUIC), or both.
func Types(ts []transport.Transport, service string) []string {
	var types []string
	for _, t := range ts {
		types = append(types, t.Service(service))
	}
	return types
}

// Transports is the "tr" TXT entry: the names of ts, comma-separated.
func Transports(ts []transport.Transport) string {
	var names []string
	for _, t := range ts {
		names = append(names, t.Name())
	}
	return strings.Join(names, ",")
}
