package advert

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Targets returns the addresses ("host:port") an advert of instance name,
// seen under service, offers at addrs and port, and the transports to
// reach them by (transports, its "tr" entry, or the one service names).
// hasID is whether it carries a peer ID.
func Targets(name string, hasID bool, addrs []netip.Addr, port int, transports []string, service string) (hostports, offered []string, err error) {
	if !hasID {
		return nil, nil, fmt.Errorf("nearnet: %q is not a nearnet peer (no peer ID in its TXT record)", name)
	}
	hostports = make([]string, 0, len(addrs))
	for _, ip := range addrs {
		hostports = append(hostports, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
	}
	if len(hostports) == 0 {
		return nil, nil, fmt.Errorf("nearnet: %q advertises no address", name)
	}
	offered = transports
	if len(offered) == 0 {
		// No "tr" entry: the transport the service type names.
		offered = []string{"ws"}
		if strings.HasSuffix(service, "._udp") {
			offered = []string{"quic"}
		}
	}
	return hostports, offered, nil
}
