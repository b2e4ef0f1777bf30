// Package nnerr holds the error types that nearnet's packages share, so
// that each is defined once: the root package re-exports them.
package nnerr

import "fmt"

// ConfigError reports an invalid configuration field or argument.
type ConfigError struct {
	Field  string // e.g. "Config.MaxMessageSize"
	Value  any
	Reason string // what is allowed
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("nearnet: invalid %s (%v): %s", e.Field, e.Value, e.Reason)
}
