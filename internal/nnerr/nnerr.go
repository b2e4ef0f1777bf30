// Package nnerr holds what nearnet's packages share about errors: the
// ConfigError that internal packages return for a bad option, and the
// hook through which an internal error type shows itself as the type the
// public API exports for it.
//
// The public API never re-exports an internal type (an alias would show
// no fields or documentation in go doc). The root package defines its own
// error types and installs [Public], which converts an internal error to
// its public counterpart. Each internal error type that can reach a caller
// of the API has an As method calling [As], so that errors.As(err, &pub)
// finds the public type wherever the internal error sits in err's chain,
// however it was wrapped on its way out.
package nnerr

import (
	"errors"
	"fmt"
)

// ConfigError reports an invalid configuration field or argument.
type ConfigError struct {
	Field  string // e.g. "Config.MaxMessageSize"
	Value  any
	Reason string // what is allowed
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("nearnet: invalid %s (%v): %s", e.Field, e.Value, e.Reason)
}

// As lets errors.As find the public type of a ConfigError.
func (e *ConfigError) As(target any) bool { return As(e, target) }

// Public, once set, returns the public error that the internal error err
// stands for, or nil if err has no public counterpart. The root package
// sets it in its initialisation, before any error exists; it is only read
// afterwards.
var Public func(err error) error

// As reports whether the public counterpart of the internal error err
// matches target, as errors.As does, setting target if so. Internal error
// types call it from their As method.
func As(err error, target any) bool {
	if Public == nil {
		return false
	}
	p := Public(err)
	return p != nil && errors.As(p, target)
}
