// Package e2e holds end-to-end tests of the nearnet command. TestMain builds
// cmd/nearnet once; each test then runs it in hosts of a lab of network
// namespaces (internal/netns) against itself and against independent peers:
// Avahi and Python's websockets. All traffic stays inside namespaces the
// tests make.
//
// NEARNET_E2E_BIN=/path/to/nearnet tests that binary instead of building one.
//
// The tests need root, iproute2, avahi-daemon, avahi-utils, dbus and
// python3-websockets. Without them they skip, unless NEARNET_INTEROP=required
// is set, as in CI, where they fail instead.
package e2e
