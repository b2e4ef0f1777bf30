// Package enum names the values of the API's small integer kinds.
package enum

import "strconv"

// Name is names[k], or "typ(k)" for a value without a name (or an empty
// one).
func Name[K ~int](k K, typ string, names ...string) string {
	if k >= 0 && int(k) < len(names) && names[k] != "" {
		return names[k]
	}
	return typ + "(" + strconv.Itoa(int(k)) + ")"
}
