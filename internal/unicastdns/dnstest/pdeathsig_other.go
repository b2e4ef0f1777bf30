//go:build !linux

package dnstest

import "os/exec"

// killWithParent: only Linux can tie a child's life to its parent's; the
// tests that run named are Linux-only.
func killWithParent(cmd *exec.Cmd) {}
