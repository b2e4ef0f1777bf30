package bench

import "net"

// loopbackName returns the name of the loopback interface ("lo" on Linux,
// "lo0" on macOS).
func loopbackName() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			return i.Name
		}
	}
	return "lo"
}
