//go:build !linux

package bench

// peakRSS is unknown here: ru_maxrss is in bytes on macOS and absent on
// Windows, and the measurement reports Linux's figure only.
func peakRSS() (int64, bool) { return 0, false }
