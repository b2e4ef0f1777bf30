package advert

import "github.com/nearnet/nearnet/discovery"

// TunnelNet is the network for mDNS of a node's userspace stack
// (nearnet.Config.Tunnel): what its Discovery method returns (package
// tunnel's Stack.Discovery, nil unless the stack's Device carries
// multicast), or nil if it has none.
func TunnelNet(tun any) discovery.Net {
	if d, ok := tun.(interface{ Discovery() discovery.Net }); ok {
		return d.Discovery()
	}
	return nil
}
